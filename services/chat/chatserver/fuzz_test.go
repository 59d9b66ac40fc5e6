package chatserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
)

// The request fuzz targets post arbitrary bodies, with a valid token, to
// every procedure of the real server (SQLite, served by httptest) over
// Connect's unary protocol, as JSON and as binary protobuf. Whatever the
// body, the answer must come, and must not be a server fault (HTTP 500,
// internal or unknown). Run one with
//
//	go test -run '^$' -fuzz '^FuzzServiceJSON$' -fuzztime 60s ./services/chat/chatserver/
//
// Seeds: the requests the consumer makes for the events of
// contracts/samples, in the target's encoding, and for JSON the sample
// files themselves.

// fuzzProcedures are the service's procedures, by the index the fuzz input
// picks.
var fuzzProcedures = []string{
	chatv1connect.ChatServiceCreateGroupProcedure,
	chatv1connect.ChatServiceGetGroupInfoProcedure,
	chatv1connect.ChatServiceGetGroupByActivityIdProcedure,
	chatv1connect.ChatServiceAddGroupMemberProcedure,
	chatv1connect.ChatServiceRemoveGroupMemberProcedure,
	chatv1connect.ChatServiceListGroupMembersProcedure,
	chatv1connect.ChatServiceSendSystemMessageProcedure,
	chatv1connect.ChatServiceListGroupMessagesProcedure,
}

// sampleEvent reads a JSON sample of contracts/samples.
func sampleEvent(f *testing.F, name string) (map[string]string, []byte) {
	f.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "contracts", "samples", name))
	if err != nil {
		f.Fatal(err)
	}
	var ev map[string]string
	if err := json.Unmarshal(data, &ev); err != nil {
		f.Fatal(err)
	}
	return ev, data
}

// sampleRequests returns, by procedure index, the requests that the seed
// events lead to, and the raw sample files.
func sampleRequests(f *testing.F) (map[int][]proto.Message, map[int][][]byte) {
	f.Helper()
	created, createdRaw := sampleEvent(f, "activity.created/seed.json")
	joined, joinedRaw := sampleEvent(f, "activity.member.joined/seed.json")
	left, leftRaw := sampleEvent(f, "activity.member.left/seed.json")
	at := func(s string) *timestamppb.Timestamp {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f.Fatal(err)
		}
		return timestamppb.New(t)
	}
	const group = "grp_0000000000000000000001"
	reqs := map[int][]proto.Message{
		0: {&chatv1.CreateGroupRequest{ActivityId: created["activity_id"], OwnerId: created["creator_id"], Name: created["title"], EventTime: at(created["created_at"])}},
		1: {&chatv1.GetGroupInfoRequest{GroupId: group}},
		2: {&chatv1.GetGroupByActivityIdRequest{ActivityId: joined["activity_id"]}},
		3: {&chatv1.AddGroupMemberRequest{GroupId: group, UserId: joined["user_id"], EventTime: at(joined["joined_at"])}},
		4: {&chatv1.RemoveGroupMemberRequest{GroupId: group, UserId: left["user_id"], EventTime: at(left["left_at"])}},
		5: {&chatv1.ListGroupMembersRequest{GroupId: group, PageSize: 2, PageToken: "bTF8MXwwfA"}},
		6: {&chatv1.SendSystemMessageRequest{GroupId: group, Text: joined["user_id"] + " 加入了活动", IdempotencyKey: "joined:" + joined["user_id"]}},
		7: {&chatv1.ListGroupMessagesRequest{GroupId: group, PageSize: 1}},
	}
	raw := map[int][][]byte{0: {createdRaw}, 2: {joinedRaw}, 3: {joinedRaw}, 4: {leftRaw}}
	return reqs, raw
}

// fuzzServer starts the real server with a token on a fresh SQLite
// database and returns a function that posts one request to it.
func fuzzServer(f *testing.F, contentType string) func(t *testing.T, procedure uint8, body []byte) {
	const token = "fuzz-token"
	cfg := testConfig(backends[0].database(f), token)
	cfg.Log.Level = "error"
	url := startServer(f, cfg).URL
	client := &http.Client{Timeout: 10 * time.Second}
	return func(t *testing.T, procedure uint8, body []byte) {
		path := fuzzProcedures[int(procedure)%len(fuzzProcedures)]
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if res.StatusCode >= 500 {
			t.Fatalf("%s with %q: HTTP %d %s", path, body, res.StatusCode, out)
		}
		if res.StatusCode != http.StatusOK {
			var e struct{ Code string }
			if err := json.Unmarshal(out, &e); err != nil || e.Code == "" || e.Code == "internal" || e.Code == "unknown" {
				t.Fatalf("%s with %q: HTTP %d %s", path, body, res.StatusCode, out)
			}
		}
	}
}

func FuzzServiceJSON(f *testing.F) {
	reqs, raw := sampleRequests(f)
	for i, msgs := range reqs {
		for _, m := range msgs {
			data, err := protojson.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), data)
		}
		for _, data := range raw[i] {
			f.Add(uint8(i), data)
		}
	}
	f.Fuzz(fuzzServer(f, "application/json"))
}

func FuzzServiceBinary(f *testing.F) {
	reqs, _ := sampleRequests(f)
	for i, msgs := range reqs {
		for _, m := range msgs {
			data, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), data)
		}
	}
	f.Fuzz(fuzzServer(f, "application/proto"))
}
