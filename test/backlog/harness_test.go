package backlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// TestHarness proves that the backlog benchmark counts a drain only when it
// is complete, and fails when the consumer exits, stalls or dead-letters.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the programs")
	}
	s := startStack(t)
	s.StartConsumer(t)
	js := s.JetStream(t)

	publish(t, js, 20)
	mem, err := watch(t.Logf, s.Consumer, js, 20, time.Now(), 30*time.Second)
	if err != nil || mem.hwm <= 0 || mem.maxRSS <= 0 {
		t.Fatalf("drain of 20 events: %+v, %v", mem, err)
	}
	if err := checkApplied(js, s.ChatURL, 20); err != nil {
		t.Fatalf("20 events applied: %v", err)
	}
	wantErr(t, "10 unpublished events", checkApplied(js, s.ChatURL, 30), "10 sampled activities have no group")

	s.Consumer.Stop()
	publish(t, js, 25) // the first 20 again, dropped as duplicates, and 5 more
	_, err = watch(t.Logf, s.Consumer, js, 25, time.Now(), 30*time.Second)
	wantErr(t, "a stopped consumer", err, "the consumer exited while draining")
	// The chat service stands for a consumer that runs but consumes nothing.
	_, err = watch(t.Logf, s.Chat, js, 25, time.Now(), time.Second)
	wantErr(t, "a consumer that consumes nothing", err, "no event handled for 1s: 5 of 25 left")

	if _, err := js.Publish(context.Background(), eventbus.DLQSubject(activityv1.ActivityCreatedSubject, "chat.consumer"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a dead letter", checkApplied(js, s.ChatURL, 20), "1 events dead-lettered")
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want one with %q", what, err, want)
	}
}
