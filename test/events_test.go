package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/natsc"
)

// The seed's payloads, verbatim: protojson with proto field names is the
// wire format, so these are valid events as they are.
const (
	seedCreated = `{"activity_id": "act_123456","creator_id": "user_789","title": "周末爬山活动","created_at": "2024-01-01T10:00:00Z"}`
	seedJoined  = `{"activity_id": "act_123456","user_id": "user_456","joined_at": "2024-01-01T11:00:00Z"}`
	seedLeft    = `{"activity_id": "act_123456","user_id": "user_456","left_at": "2024-01-01T12:00:00Z"}`
)

// event is one message to publish.
type event struct {
	Subject string
	MsgID   string
	Data    []byte
}

func (e event) msg() *nats.Msg {
	m := nats.NewMsg(e.Subject)
	m.Header.Set(nats.MsgIdHdr, e.MsgID)
	m.Data = e.Data
	return m
}

// baseTime is the event time of the first event of a plan.
var baseTime = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func createdEvent(activityID, creatorID, title string, at time.Time) event {
	return event{subjectCreated, "created:" + activityID, mustJSON(map[string]string{
		"activity_id": activityID, "creator_id": creatorID, "title": title, "created_at": at.Format(time.RFC3339),
	})}
}

func joinedEvent(activityID, userID string, at time.Time) event {
	return event{subjectJoined, "joined:" + activityID + ":" + userID + ":" + at.Format(time.RFC3339), mustJSON(map[string]string{
		"activity_id": activityID, "user_id": userID, "joined_at": at.Format(time.RFC3339),
	})}
}

func leftEvent(activityID, userID string, at time.Time) event {
	return event{subjectLeft, "left:" + activityID + ":" + userID + ":" + at.Format(time.RFC3339), mustJSON(map[string]string{
		"activity_id": activityID, "user_id": userID, "left_at": at.Format(time.RFC3339),
	})}
}

// plan is a load of events whose outcome is known exactly: activities, each
// created by its owner, joined by users and left by some of them. Each user
// joins an activity at most once and leaves after joining, so the final
// membership and the notices do not depend on delivery order within a
// phase, provided the phases (created, joined, left) are applied one after
// the other.
type plan struct {
	Activities []planActivity
}

type planActivity struct {
	ID, Owner, Title string
	Joiners          []string // users who join
	Leavers          []string // a prefix of Joiners who leave later
}

// newPlan returns activities × (1 created + joins + leaves) events; leaves
// must not exceed joins. prefix keeps ids of runs and scenarios apart.
func newPlan(prefix string, activities, joins, leaves int) plan {
	var p plan
	for a := range activities {
		pa := planActivity{
			ID:    fmt.Sprintf("%s_act_%03d", prefix, a),
			Owner: fmt.Sprintf("%s_owner_%03d", prefix, a),
			Title: fmt.Sprintf("活动 %s %d", prefix, a),
		}
		for u := range joins {
			pa.Joiners = append(pa.Joiners, fmt.Sprintf("%s_user_%04d", prefix, u))
		}
		pa.Leavers = pa.Joiners[:leaves]
		p.Activities = append(p.Activities, pa)
	}
	return p
}

// Created, Joined and Left return the events of the plan's phases.
func (p plan) Created() []event {
	var evs []event
	for _, a := range p.Activities {
		evs = append(evs, createdEvent(a.ID, a.Owner, a.Title, baseTime))
	}
	return evs
}

func (p plan) Joined() []event {
	return p.JoinedWhere(func(planActivity, string) bool { return true })
}

// JoinedWhere returns the join events of the users keep selects.
func (p plan) JoinedWhere(keep func(a planActivity, user string) bool) []event {
	var evs []event
	for i, a := range p.Activities {
		for j, u := range a.Joiners {
			if keep(a, u) {
				evs = append(evs, joinedEvent(a.ID, u, baseTime.Add(time.Hour+time.Duration(i*10000+j)*time.Second)))
			}
		}
	}
	return evs
}

func (p plan) Left() []event {
	var evs []event
	for i, a := range p.Activities {
		for j, u := range a.Leavers {
			evs = append(evs, leftEvent(a.ID, u, baseTime.Add(3*time.Hour+time.Duration(i*10000+j)*time.Second)))
		}
	}
	return evs
}

// Total is the number of events of the plan.
func (p plan) Total() int {
	n := 0
	for _, a := range p.Activities {
		n += 1 + len(a.Joiners) + len(a.Leavers)
	}
	return n
}

// publishAll publishes evs from the host with workers publishers at once,
// each message retried until the stream acknowledges it (Nats-Msg-Id makes
// retries harmless), and returns how many retries it took. progress, if not
// nil, counts acknowledged messages. It fails t, so call it from the test's
// goroutine; other goroutines call publishEvents.
func publishAll(t *testing.T, ctx context.Context, js jetstream.JetStream, evs []event, workers int, progress *atomic.Int64) int {
	t.Helper()
	retries, err := publishEvents(ctx, js, evs, workers, progress)
	if err != nil {
		t.Fatal(err)
	}
	return retries
}

// publishEvents is publishAll without t, bounded to 3 minutes.
func publishEvents(ctx context.Context, js jetstream.JetStream, evs []event, workers int, progress *atomic.Int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	next := make(chan event)
	var retries atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range next {
				_, attempts, err := natsc.PublishRetry(ctx, js, ev.msg(), 2*time.Second)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
					continue
				}
				retries.Add(int64(attempts - 1))
				if progress != nil {
					progress.Add(1)
				}
			}
		}()
	}
feed:
	for _, ev := range evs {
		select {
		case next <- ev:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return int(retries.Load()), fmt.Errorf("publish: %w", *err)
	}
	if err := ctx.Err(); err != nil {
		return int(retries.Load()), fmt.Errorf("publish %d events: %w", len(evs), err)
	}
	return int(retries.Load()), nil
}
