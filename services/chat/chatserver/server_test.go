package chatserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
)

var t0 = time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)

func TestService(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		client := newClient(startServer(t, testConfig(b.database(t))), "")

		create := connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_123456", OwnerId: "user_789", Name: "Weekend hike"})
		first, err := client.CreateGroup(ctx, create)
		if err != nil {
			t.Fatalf("CreateGroup: %v", err)
		}
		second, err := client.CreateGroup(ctx, create)
		if err != nil {
			t.Fatalf("CreateGroup again: %v", err)
		}
		groupID := first.Msg.GetGroup().GetGroupId()
		if !first.Msg.GetCreated() || second.Msg.GetCreated() || second.Msg.GetGroup().GetGroupId() != groupID {
			t.Fatalf("CreateGroup twice: %v then %v; want one group, created once", first.Msg, second.Msg)
		}

		byActivity, err := client.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: "act_123456"}))
		if err != nil || byActivity.Msg.GetGroup().GetGroupId() != groupID {
			t.Fatalf("GetGroupByActivityId = %v, %v; want %s", byActivity, err, groupID)
		}
		info, err := client.GetGroupInfo(ctx, connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: groupID}))
		if err != nil || info.Msg.GetGroup().GetOwnerId() != "user_789" || info.Msg.GetGroup().GetMemberCount() != 1 {
			t.Fatalf("GetGroupInfo = %v, %v", info, err)
		}

		add := func(user string, at time.Time) *chatv1.AddGroupMemberResponse {
			t.Helper()
			res, err := client.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{GroupId: groupID, UserId: user, EventTime: timestamppb.New(at)}))
			if err != nil {
				t.Fatalf("AddGroupMember(%s): %v", user, err)
			}
			return res.Msg
		}
		remove := func(user string, at time.Time) (*chatv1.RemoveGroupMemberResponse, error) {
			res, err := client.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: groupID, UserId: user, EventTime: timestamppb.New(at)}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		members := func() []string {
			t.Helper()
			res, err := client.ListGroupMembers(ctx, connect.NewRequest(&chatv1.ListGroupMembersRequest{GroupId: groupID}))
			if err != nil {
				t.Fatalf("ListGroupMembers: %v", err)
			}
			var ids []string
			for _, m := range res.Msg.GetMembers() {
				ids = append(ids, m.GetUserId()+"/"+strings.TrimPrefix(m.GetRole().String(), "ROLE_"))
			}
			return ids
		}

		if got := add("user_456", t0); !got.GetApplied() || !got.GetIsMember() {
			t.Errorf("add = %v, want applied", got)
		}
		if got := add("user_456", t0); got.GetApplied() || !got.GetIsMember() {
			t.Errorf("repeated add = %v, want not applied, member", got)
		}
		if got, want := strings.Join(members(), " "), "user_789/OWNER user_456/MEMBER"; got != want {
			t.Errorf("members = %q, want %q", got, want)
		}
		if got, err := remove("user_456", t0.Add(time.Hour)); err != nil || !got.GetApplied() || got.GetIsMember() {
			t.Errorf("remove = %v, %v; want applied", got, err)
		}
		if got, want := strings.Join(members(), " "), "user_789/OWNER"; got != want {
			t.Errorf("members after remove = %q, want %q", got, want)
		}
		_, err = remove("user_789", t0.Add(time.Hour))
		wantCode(t, err, connect.CodeFailedPrecondition)

		send := connect.NewRequest(&chatv1.SendSystemMessageRequest{GroupId: groupID, Text: "user_456 joined", IdempotencyKey: "joined:user_456"})
		m1, err := client.SendSystemMessage(ctx, send)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := client.SendSystemMessage(ctx, send)
		if err != nil {
			t.Fatal(err)
		}
		if !m1.Msg.GetCreated() || m2.Msg.GetCreated() || m1.Msg.GetMessage().GetMessageId() != m2.Msg.GetMessage().GetMessageId() {
			t.Errorf("SendSystemMessage twice: %v then %v; want one message", m1.Msg, m2.Msg)
		}
		msgs, err := client.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: groupID}))
		if err != nil || len(msgs.Msg.GetMessages()) != 1 || !msgs.Msg.GetMessages()[0].GetSystem() {
			t.Errorf("ListGroupMessages = %v, %v; want the one system message", msgs, err)
		}

		_, err = client.ListGroupMembers(ctx, connect.NewRequest(&chatv1.ListGroupMembersRequest{GroupId: groupID, PageToken: "garbage"}))
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		client := newClient(startServer(t, testConfig(b.database(t))), "")
		ts := timestamppb.New(t0)
		calls := map[string]func() error{
			"GetGroupInfo": func() error {
				_, err := client.GetGroupInfo(ctx, connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "grp_nope"}))
				return err
			},
			"GetGroupByActivityId": func() error {
				_, err := client.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: "act_nope"}))
				return err
			},
			"AddGroupMember": func() error {
				_, err := client.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{GroupId: "grp_nope", UserId: "u", EventTime: ts}))
				return err
			},
			"RemoveGroupMember": func() error {
				_, err := client.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: "grp_nope", UserId: "u", EventTime: ts}))
				return err
			},
			"ListGroupMembers": func() error {
				_, err := client.ListGroupMembers(ctx, connect.NewRequest(&chatv1.ListGroupMembersRequest{GroupId: "grp_nope"}))
				return err
			},
			"SendSystemMessage": func() error {
				_, err := client.SendSystemMessage(ctx, connect.NewRequest(&chatv1.SendSystemMessageRequest{GroupId: "grp_nope", Text: "hi"}))
				return err
			},
			"ListGroupMessages": func() error {
				_, err := client.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: "grp_nope"}))
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) { wantCode(t, call(), connect.CodeNotFound) })
		}
	})
}

func TestInvalidArgument(t *testing.T) {
	ts := startServer(t, testConfig(backends[0].database(t)))
	client := newClient(ts, "")
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"empty activity_id", func() error {
			_, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{OwnerId: "u", Name: "n"}))
			return err
		}, "activity_id"},
		{"bad owner_id charset", func() error {
			_, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "a", OwnerId: "u u", Name: "n"}))
			return err
		}, "owner_id"},
		{"missing event_time", func() error {
			_, err := client.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{GroupId: "g", UserId: "u"}))
			return err
		}, "event_time"},
		{"page_size too large", func() error {
			_, err := client.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: "g", PageSize: 5000}))
			return err
		}, "page_size"},
		{"text too long", func() error {
			_, err := client.SendSystemMessage(ctx, connect.NewRequest(&chatv1.SendSystemMessageRequest{GroupId: "g", Text: strings.Repeat("x", 4001)}))
			return err
		}, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, connect.CodeInvalidArgument)
			var ce *connect.Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message(), tt.field+":") {
				t.Errorf("message %q does not name %s", ce.Message(), tt.field)
			}
		})
	}

	t.Run("raw Connect JSON", func(t *testing.T) {
		res, err := http.Post(ts.URL+"/chat.v1.ChatService/CreateGroup", "application/json",
			strings.NewReader(`{"activity_id":"","owner_id":"user_789","name":"Hike"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":"invalid_argument"`) || !strings.Contains(string(body), "activity_id") {
			t.Errorf("HTTP %d %s; want 400 with invalid_argument naming activity_id", res.StatusCode, body)
		}
	})
}

func TestRequestSizeLimit(t *testing.T) {
	ts := startServer(t, testConfig(backends[0].database(t)))
	_, err := newClient(ts, "").CreateGroup(context.Background(), connect.NewRequest(&chatv1.CreateGroupRequest{
		ActivityId: "a", OwnerId: "u", Name: strings.Repeat("x", chatserver.MaxRequestBytes+1),
	}))
	wantCode(t, err, connect.CodeResourceExhausted)
}

func TestAuth(t *testing.T) {
	ts := startServer(t, testConfig(backends[0].database(t), "token-one", "token-two"))
	ctx := context.Background()
	call := func(client chatv1connect.ChatServiceClient) error {
		_, err := client.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: "act_1"}))
		return err
	}
	tests := []struct {
		name  string
		token string
		want  connect.Code
	}{
		{"no token", "", connect.CodeUnauthenticated},
		{"wrong token", "token-three", connect.CodeUnauthenticated},
		{"prefix of a token", "token-on", connect.CodeUnauthenticated},
		{"first token", "token-one", connect.CodeNotFound},
		{"second token", "token-two", connect.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, call(newClient(ts, tt.token)), tt.want)
		})
	}

	t.Run("raw HTTP", func(t *testing.T) {
		for _, header := range []string{"", "Bearer nope", "Basic dG9rZW4tb25lOg==", "token-one"} {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/chat.v1.ChatService/GetGroupByActivityId", strings.NewReader(`{"activity_id":"act_1"}`))
			req.Header.Set("Content-Type", "application/json")
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "unauthenticated") {
				t.Errorf("Authorization %q: HTTP %d %s; want 401 unauthenticated", header, res.StatusCode, body)
			}
		}
	})

	t.Run("open routes", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			res, err := http.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200 without a token", path, res.StatusCode)
			}
		}
		health := grpchealth.NewClient(ts.Client(), ts.URL)
		res, err := health.Check(ctx, &grpchealth.CheckRequest{Service: chatv1connect.ChatServiceName})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Errorf("health check = %v, %v; want serving without a token", res, err)
		}
	})
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(backends[0].database(t)))
	client := newClient(ts, "")
	ctx := context.Background()
	for range 2 {
		if _, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_1", OwnerId: "u", Name: "n"})); err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = client.GetGroupInfo(ctx, connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "grp_nope"}))
	wantCode(t, err, connect.CodeNotFound)

	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`chat_rpc_requests_total{procedure="/chat.v1.ChatService/CreateGroup"} 3`,
		`chat_rpc_requests_total{procedure="/chat.v1.ChatService/GetGroupInfo"} 1`,
		`chat_rpc_errors_total{code="invalid_argument",procedure="/chat.v1.ChatService/CreateGroup"} 1`,
		`chat_rpc_errors_total{code="not_found",procedure="/chat.v1.ChatService/GetGroupInfo"} 1`,
		`chat_rpc_request_duration_seconds_count{procedure="/chat.v1.ChatService/CreateGroup"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestReadyz(t *testing.T) {
	srv, err := chatserver.New(testConfig(backends[0].database(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := newHTTPTestServer(t, srv)
	get := func(path string) int {
		res, err := http.Get(ts + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := get("/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", got)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz after Close = %d, want 503", got)
	}
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz after Close = %d, want 200", got)
	}
}

// TestServe runs the server on a real listener: gRPC needs HTTP/2, which
// the server speaks without TLS (h2c), and cancelling the context shuts
// the server down.
func TestServe(t *testing.T) {
	srv, err := chatserver.New(testConfig(backends[0].database(t), "secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	url := "http://" + ln.Addr().String()
	for _, tt := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
		{"connect", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := chatv1connect.NewChatServiceClient(h2c, url, append(tt.opts, connect.WithInterceptors(bearer("secret")))...)
			res, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_" + tt.name, OwnerId: "u", Name: "n"}))
			if err != nil || !res.Msg.GetCreated() {
				t.Fatalf("CreateGroup over %s = %v, %v", tt.name, res, err)
			}
			_, err = chatv1connect.NewChatServiceClient(h2c, url, tt.opts...).GetGroupInfo(ctx, connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "g"}))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
	health, err := grpchealth.NewClient(h2c, url, connect.WithGRPC()).Check(ctx, &grpchealth.CheckRequest{})
	if err != nil || health.Status != grpchealth.StatusServing {
		t.Errorf("gRPC health = %v, %v", health, err)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(chatserver.ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestWithRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := chatserver.New(testConfig(backends[0].database(t)), nil, chatserver.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := newHTTPTestServer(t, srv)
	_, err = chatv1connect.NewChatServiceClient(http.DefaultClient, url).GetGroupInfo(context.Background(),
		connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "grp_1"}))
	wantCode(t, err, connect.CodeNotFound)
	if n, err := testutil.GatherAndCount(reg, "chat_rpc_requests_total", "chat_rpc_errors_total"); err != nil || n != 2 {
		t.Errorf("the caller's registry has %d series, %v; want 2", n, err)
	}
	if _, err := chatserver.New(testConfig(backends[0].database(t)), nil, chatserver.WithRegistry(reg)); err == nil {
		t.Error("a second server on the same registry: New succeeded")
	}
}
