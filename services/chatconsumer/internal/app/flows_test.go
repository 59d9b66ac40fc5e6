package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/internal/testwait"
)

// The seed's three JSON examples, verbatim.
const (
	seedCreated = `{
  "activity_id": "act_123456",
  "creator_id": "user_789",
  "title": "周末爬山活动",
  "created_at": "2024-01-01T10:00:00Z"
}`
	seedJoined = `{
  "activity_id": "act_123456",
  "user_id": "user_456",
  "joined_at": "2024-01-01T11:00:00Z"
}`
	seedLeft = `{
  "activity_id": "act_123456",
  "user_id": "user_456",
  "left_at": "2024-01-01T12:00:00Z"
}`
)

// TestSeedWalk publishes the seed's three examples as a plain NATS client
// would (core publish, no headers) and checks the group, its owner, the
// member added and then removed, and the three notices.
func TestSeedWalk(t *testing.T) {
	s := newStack(t, nil)
	runApp(t, s.config())

	steps := []struct {
		subject, payload string
		members          []string
	}{
		{"activity.created", seedCreated, []string{"user_789"}},
		{"activity.member.joined", seedJoined, []string{"user_456", "user_789"}},
		{"activity.member.left", seedLeft, []string{"user_789"}},
	}
	for i, step := range steps {
		t.Run(step.subject, func(t *testing.T) {
			if err := s.nc.Publish(step.subject, []byte(step.payload)); err != nil {
				t.Fatal(err)
			}
			if err := s.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			s.wantMembers(t, "act_123456", step.members...)
			// The notice follows the membership change; wait for it too,
			// so that the next step's notice comes after it.
			testwait.Eventually(t, 10*time.Second, func() error {
				if n := len(s.notices(t, "act_123456")); n != i+1 {
					return fmt.Errorf("%d notices, want %d", n, i+1)
				}
				return nil
			})
		})
	}

	g := s.chat.Group("act_123456")
	if g.GetOwnerId() != "user_789" || g.GetName() != "周末爬山活动" {
		t.Errorf("group = %v, want owner user_789 named 周末爬山活动", g)
	}
	want := []string{
		"user_789:活动群聊「周末爬山活动」已创建，你是群主。",
		"user_456:你已报名成功，已加入活动群聊「周末爬山活动」。",
		"user_456:你已取消报名，已退出活动群聊「周末爬山活动」。",
	}
	testwait.Eventually(t, 10*time.Second, func() error {
		if got := s.notices(t, "act_123456"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("notices = %q, want %q", got, want)
		}
		return nil
	})
	if n := s.deadLetterCount(t); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// TestOutOfOrderConverges publishes joins and leaves before their
// activity's created event: they are handled (the chat service keeps them
// pending), not dead-lettered, and end in the state their event times say,
// a leave older than a join included.
func TestOutOfOrderConverges(t *testing.T) {
	s := newStack(t, nil)
	runApp(t, s.config())

	const act = "act_ooo"
	publishJoined(t, s.js, act, "u1", at(11, 0))
	publishLeft(t, s.js, act, "u2", at(12, 0)) // the leave first,
	publishJoined(t, s.js, act, "u2", at(11, 0))
	publishJoined(t, s.js, act, "u3", at(11, 0))
	publishLeft(t, s.js, act, "u3", at(10, 30)) // a leave older than the join

	s.waitIdle(t)
	if g := s.chat.Group(act); g != nil {
		t.Fatalf("group exists before its created event: %v", g)
	}
	if n := s.deadLetterCount(t); n != 0 {
		t.Fatalf("%d dead letters while waiting for the group, want none", n)
	}

	publishCreated(t, s.js, act, "owner", "Out of order")
	s.wantMembers(t, act, "owner", "u1", "u3")
	// Which notices are sent depends on the order the held events happen
	// to be retried in; the final state does not. Every notice is sent at
	// most once, and u1 and u3, members in the end, got their join notice.
	testwait.Eventually(t, 10*time.Second, func() error {
		got := s.notices(t, act)
		seen := map[string]bool{}
		for _, n := range got {
			if seen[n] {
				return fmt.Errorf("notice %q sent twice", n)
			}
			seen[n] = true
		}
		all := strings.Join(got, "\n")
		for _, want := range []string{"owner:", "u1:你已报名成功", "u3:你已报名成功"} {
			if !strings.Contains(all, want) {
				return fmt.Errorf("notices %q lack %q", got, want)
			}
		}
		return nil
	})
	if n := s.deadLetterCount(t); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// TestStaleEventsSendNoNotice checks that a join older than the latest
// leave, and a leave older than the latest join, change nothing and send no
// notice when the group exists, and that a leave of a user who never was a
// member sends no notice either.
func TestStaleEventsSendNoNotice(t *testing.T) {
	s := newStack(t, nil)
	runApp(t, s.config())
	const act = "act_stale"
	publishCreated(t, s.js, act, "owner", "Stale")
	s.wantMembers(t, act, "owner")

	publishJoined(t, s.js, act, "a", at(11, 0))
	s.wantMembers(t, act, "a", "owner")
	publishLeft(t, s.js, act, "a", at(10, 0)) // older than the join: ignored
	publishLeft(t, s.js, act, "b", at(12, 0))
	// Joins and leaves go through different consumers; wait for the leave
	// before the older join, so that the join is the stale one.
	testwait.Eventually(t, 10*time.Second, func() error {
		info := consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberLeftSubject)
		if info.Delivered.Consumer < 2 || info.NumPending+uint64(info.NumAckPending) > 0 {
			return fmt.Errorf("leaves still pending")
		}
		return nil
	})
	publishJoined(t, s.js, act, "b", at(11, 0)) // older than the leave: ignored

	testwait.Eventually(t, 10*time.Second, func() error {
		info := consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberJoinedSubject)
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			return fmt.Errorf("joins still pending")
		}
		info = consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberLeftSubject)
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			return fmt.Errorf("leaves still pending")
		}
		return nil
	})
	s.wantMembers(t, act, "a", "owner")
	got := s.notices(t, act)
	slices.Sort(got)                       // concurrent consumers store notices in any order
	want := []string{"a:你已报名成功", "owner:"} // b never was a member: no notice
	if len(got) != len(want) {
		t.Fatalf("notices = %q, want %d: %q", got, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("notice %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestOwnerLeaveIsDeadLettered checks that the chat service's refusal to
// remove the owner (failed_precondition) dead-letters the event on its
// first delivery, with the reason.
func TestOwnerLeaveIsDeadLettered(t *testing.T) {
	s := newStack(t, nil)
	runApp(t, s.config())
	publishCreated(t, s.js, "act_owner", "owner", "Owner")
	s.wantMembers(t, "act_owner", "owner")
	publishLeft(t, s.js, "act_owner", "owner", at(12, 0))
	testwait.Eventually(t, 10*time.Second, func() error {
		if s.deadLetterCount(t) != 1 {
			return testwait.ErrNotYet
		}
		return nil
	})
	dl := s.deadLetters(t)[0]
	if dl.Deliveries != 1 || !strings.Contains(dl.Reason, "failed_precondition") {
		t.Errorf("dead letter after %d deliveries, reason %q; want 1 and failed_precondition", dl.Deliveries, dl.Reason)
	}
	s.wantMembers(t, "act_owner", "owner")
}
