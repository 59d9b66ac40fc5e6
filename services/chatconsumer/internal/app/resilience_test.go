package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/internal/testwait"
)

// loseResponses returns middleware that lets the first n calls of each
// procedure in procs reach the chat service and then answers them with an
// internal error, as if the response had been lost: the write is done, the
// consumer does not know it and retries.
func loseResponses(n int, procs ...string) func(http.Handler) http.Handler {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lose := false
			for _, p := range procs {
				if strings.HasSuffix(r.URL.Path, "/"+p) {
					mu.Lock()
					seen[p]++
					lose = seen[p] <= n
					mu.Unlock()
				}
			}
			if !lose {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"code":"internal","message":"response lost by the test"}`))
		})
	}
}

// TestRedeliveryAndRepublishHaveNoDoubleEffect makes every write's first
// response get lost, so each event is redelivered after its effect, and then
// republishes the events: with the same Nats-Msg-Id (deduplicated by the
// stream), with a new one, and raw without headers. The group ends with one
// member row per user and one notice per applied change: none for the
// leave of u2, who never was a member.
func TestRedeliveryAndRepublishHaveNoDoubleEffect(t *testing.T) {
	s := newStack(t, loseResponses(1, "CreateGroup", "AddGroupMember", "RemoveGroupMember", "SendSystemMessage"))
	a := runApp(t, s.config())
	const act = "act_dup"

	publishCreated(t, s.js, act, "owner", "Dup")
	publishJoined(t, s.js, act, "u1", at(11, 0))
	s.wantMembers(t, act, "owner", "u1")
	publishLeft(t, s.js, act, "u2", at(9, 0))

	want := []string{ // sorted
		"owner:活动群聊「Dup」已创建，你是群主。",
		"u1:你已报名成功，已加入活动群聊「Dup」。",
	}
	waitNotices := func(t *testing.T) {
		t.Helper()
		// Retries reorder the notices; each must be there exactly once.
		testwait.Eventually(t, 15*time.Second, func() error {
			got := s.notices(t, act)
			slices.Sort(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				return fmt.Errorf("notices = %q, want %q", got, want)
			}
			return nil
		})
	}
	waitNotices(t)
	// The leave of u2 sends no notice: wait for its redelivery to be acked.
	testwait.Eventually(t, 15*time.Second, func() error {
		info := consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberLeftSubject)
		if info.Delivered.Consumer < 2 || info.NumPending+uint64(info.NumAckPending) > 0 {
			return testwait.ErrNotYet
		}
		return nil
	})
	if got := counter(t, a, "messaging_redeliveries_total", nil); got < 3 {
		t.Errorf("messaging_redeliveries_total = %v, want >= 3 (one per event)", got)
	}

	republish := []struct {
		name    string
		publish func(t *testing.T)
	}{
		{"same msg id", func(t *testing.T) {
			ack, err := activityv1.PublishActivityMemberJoined(context.Background(), s.js, &activityv1.ActivityMemberJoined{ActivityId: act, UserId: "u1", JoinedAt: at(11, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if !ack.Duplicate {
				t.Error("republish with the same content was stored again, want deduplicated")
			}
		}},
		{"new msg id", func(t *testing.T) {
			publishCreated(t, s.js, act, "owner", "Dup", eventbus.WithMsgID("again-1"))
			publishJoined(t, s.js, act, "u1", at(11, 0), eventbus.WithMsgID("again-2"))
			publishLeft(t, s.js, act, "u2", at(9, 0), eventbus.WithMsgID("again-3"), eventbus.WithBinary())
		}},
		{"raw without headers", func(t *testing.T) {
			for range 2 {
				_, err := s.js.PublishMsg(context.Background(), &nats.Msg{
					Subject: activityv1.ActivityMemberJoinedSubject,
					Data:    []byte(`{"activity_id":"act_dup","user_id":"u1","joined_at":"2024-01-01T11:00:00.000Z"}`),
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, rp := range republish {
		t.Run(rp.name, func(t *testing.T) {
			before := counter(t, a, "messaging_handler_total", map[string]string{"outcome": "ack"})
			rp.publish(t)
			if rp.name != "same msg id" {
				testwait.Eventually(t, 10*time.Second, func() error {
					if counter(t, a, "messaging_handler_total", map[string]string{"outcome": "ack"}) <= before {
						return testwait.ErrNotYet
					}
					return nil
				})
			}
			s.waitIdle(t) // every republished event handled
			s.wantMembers(t, act, "owner", "u1")
			waitNotices(t)
		})
	}
	if n := s.deadLetterCount(t); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// TestChatOutageHoldsInsteadOfDeadLettering stops the chat service for a
// while under a stream of events: /readyz reports not ready, no event is
// dead-lettered or spends its deliveries, and every event is applied once
// the service is back. The 60-second version runs in the e2e tests.
func TestChatOutageHoldsInsteadOfDeadLettering(t *testing.T) {
	outage := 6 * time.Second
	if testing.Short() {
		outage = 2 * time.Second
	}
	s := newStack(t, nil)
	a := runApp(t, s.config())
	const act = "act_outage"
	publishCreated(t, s.js, act, "owner", "Outage")
	s.wantMembers(t, act, "owner")

	s.chat.Stop()
	start := time.Now()
	const events = 60
	wantMembers := []string{"owner"}
	sawNotReady := false
	for i := range events {
		user := fmt.Sprintf("u%03d", i)
		publishJoined(t, s.js, act, user, at(11, 0))
		wantMembers = append(wantMembers, user)
		time.Sleep(outage / events)
		if code, _ := httpGet(t, a.Endpoints().Ops+"/readyz"); code == http.StatusServiceUnavailable {
			sawNotReady = true
		}
	}
	if !sawNotReady {
		t.Error("/readyz never reported not ready during the outage")
	}
	if code, body := httpGet(t, a.Endpoints().Ops+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Errorf("/readyz during the outage = %d %q, want 503 naming the unavailable dependency", code, body)
	}
	if code, _ := httpGet(t, a.Endpoints().Ops+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the outage = %d, want 200", code)
	}
	time.Sleep(time.Until(start.Add(outage)))
	if n := s.deadLetterCount(t); n != 0 {
		t.Fatalf("%d dead letters during the outage, want none", n)
	}
	info := consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberJoinedSubject)
	if info.NumRedelivered > 2 {
		t.Errorf("%d joins redelivered during the outage, want at most the probes", info.NumRedelivered)
	}

	s.chat.Start()
	testwait.Eventually(t, 20*time.Second, a.Ready)
	s.wantMembers(t, act, wantMembers...)
	if code, _ := httpGet(t, a.Endpoints().Ops+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the outage = %d, want 200", code)
	}
	testwait.Eventually(t, 10*time.Second, func() error {
		if n := len(s.notices(t, act)); n != events+1 {
			return fmt.Errorf("%d notices, want %d", n, events+1)
		}
		return nil
	})
	if n := s.deadLetterCount(t); n != 0 {
		t.Errorf("%d dead letters after the outage, want none", n)
	}
	if got := counter(t, a, "messaging_handler_total", map[string]string{"outcome": "hold"}); got == 0 {
		t.Error("messaging_handler_total{outcome=hold} = 0, want the held events counted")
	}
}

// TestPoisonIsIsolated publishes malformed JSON, an invalid field and an
// unknown content type among good events: each bad one is dead-lettered on
// its first delivery with its reason, and the good ones are applied.
func TestPoisonIsIsolated(t *testing.T) {
	s := newStack(t, nil)
	a := runApp(t, s.config())
	const act = "act_poison"
	publishCreated(t, s.js, act, "owner", "Poison")

	poison := []struct {
		name    string
		msg     *nats.Msg
		reason  string
		subject string
	}{
		{"malformed JSON", &nats.Msg{Subject: "activity.member.joined", Data: []byte(`{"activity_id": "act_poison", "user_id": `)},
			"cannot decode payload", "activity.member.joined"},
		{"invalid field", &nats.Msg{Subject: "activity.member.left", Data: []byte(`{"activity_id":"act poison!","user_id":"u9","left_at":"2024-01-01T12:00:00Z"}`)},
			"activity_id", "activity.member.left"},
		{"missing field", &nats.Msg{Subject: "activity.created", Data: []byte(`{"activity_id":"act_x","creator_id":"u1","created_at":"2024-01-01T10:00:00Z"}`)},
			"title: is required", "activity.created"},
		{"unknown content type", &nats.Msg{Subject: "activity.member.joined", Header: nats.Header{"Content-Type": []string{"text/csv"}}, Data: []byte("act_poison,u8")},
			"unknown content type", "activity.member.joined"},
	}
	for i, p := range poison {
		if _, err := s.js.PublishMsg(context.Background(), p.msg); err != nil {
			t.Fatal(err)
		}
		publishJoined(t, s.js, act, fmt.Sprintf("good%d", i), at(11, 0))
	}
	s.wantMembers(t, act, "good0", "good1", "good2", "good3", "owner")

	testwait.Eventually(t, 10*time.Second, func() error {
		if n := s.deadLetterCount(t); n != uint64(len(poison)) {
			return fmt.Errorf("%d dead letters, want %d", n, len(poison))
		}
		return nil
	})
	letters := s.deadLetters(t)
	for _, p := range poison {
		t.Run(p.name, func(t *testing.T) {
			for _, l := range letters {
				if string(l.Data) != string(p.msg.Data) {
					continue
				}
				if l.Deliveries != 1 {
					t.Errorf("dead-lettered after %d deliveries, want 1", l.Deliveries)
				}
				if l.Subject != p.subject || !strings.Contains(l.Reason, p.reason) {
					t.Errorf("dead letter on %s with reason %q, want %s and a reason containing %q", l.Subject, l.Reason, p.subject, p.reason)
				}
				return
			}
			t.Errorf("no dead letter holds %q byte for byte", p.msg.Data)
		})
	}
	if got := counter(t, a, "messaging_handler_errors_total", map[string]string{"outcome": "dead_letter"}); got != float64(len(poison)) {
		t.Errorf("messaging_handler_errors_total{outcome=dead_letter} = %v, want %d", got, len(poison))
	}
}
