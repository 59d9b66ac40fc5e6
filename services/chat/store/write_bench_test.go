package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chat/store"
)

// BenchmarkAddMemberConcurrent measures AddMember on each store itself,
// without RPC: 16 goroutines each add new users, by activity and with a
// notice, as the consumer does, to 100 groups. It reports calls/s and the
// 50th and 99th percentile latency; it is where the SQLite writer's group
// commit shows without the cost of Connect around it. The postgres case
// needs CHAT_TEST_POSTGRES_DSN.
//
//	go test -run '^$' -bench AddMemberConcurrent -benchtime 20000x ./services/chat/store/
func BenchmarkAddMemberConcurrent(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAddMemberConcurrent(b, openSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchAddMemberConcurrent(b, openPostgres(b)) })
}

func benchAddMemberConcurrent(b *testing.B, s store.Store) {
	const clients, groups = 16, 100
	ctx := context.Background()
	for i := range groups {
		if _, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: fmt.Sprintf("act_%d", i), OwnerID: "owner", Name: "Bench"}); err != nil {
			b.Fatal(err)
		}
	}
	eventTime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	run := time.Now().UnixNano()
	var seq atomic.Int64
	latencies := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for {
				n := seq.Add(1)
				if n > int64(b.N) {
					return
				}
				user := fmt.Sprintf("user_%d_%d", run, n)
				t := time.Now()
				c, err := s.AddMember(ctx, store.MembershipEvent{ActivityID: fmt.Sprintf("act_%d", n%groups), UserID: user, EventTime: eventTime,
					Notice: store.Notice{Text: user + " joined {group_name}", IdempotencyKey: "join-" + user}})
				latencies[w] = append(latencies[w], time.Since(t))
				if err != nil || !c.Applied {
					b.Errorf("AddMember = %+v, %v", c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
