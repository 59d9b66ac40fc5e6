package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chat/store"
)

// scaleMembersPerGroup is the members of each seeded group, its owner
// included.
const scaleMembersPerGroup = 10

// BenchmarkScale measures GroupByActivityID, AddMember (by activity, with
// its notice, as the consumer calls it) and ListMembers on SQLite seeded
// with 1,000 groups and 10,000 memberships, and, with CHAT_BENCH_SCALE=1,
// with 100,000 groups and 1,000,000 memberships, so the two sizes show how
// each call grows with the data. Each call runs b.N times from one client
// on a random group; it reports the 50th and 99th percentile latency.
//
//	CHAT_BENCH_SCALE=1 go test -run '^$' -bench Scale -benchtime 20000x ./services/chat/store/
//
// The data is seeded with the documented SQL fast path seedSQLite, one
// INSERT … SELECT per table in one transaction, not through the store.
func BenchmarkScale(b *testing.B) {
	sizes := []int{1_000}
	if os.Getenv("CHAT_BENCH_SCALE") == "1" {
		sizes = append(sizes, 100_000)
	}
	for _, groups := range sizes {
		b.Run(fmt.Sprintf("memberships=%s", countLabel(groups*scaleMembersPerGroup)), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "chat.db")
			s, err := store.Open(ctx, store.DriverSQLite, path) // creates the schema
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
			start := time.Now()
			if err := seedSQLite(ctx, path, groups); err != nil {
				b.Fatal(err)
			}
			b.Logf("seeded %d groups, %d memberships in %v", groups, groups*scaleMembersPerGroup, time.Since(start).Round(time.Millisecond))
			s, err = store.Open(ctx, store.DriverSQLite, path)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			rng := rand.New(rand.NewPCG(1, uint64(groups)))
			pick := func() int { return rng.IntN(groups) }
			eventTime := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

			b.Run("GetGroupByActivityId", func(b *testing.B) {
				measure(b, func(int) error {
					_, err := s.GroupByActivityID(ctx, seedActivity(pick()))
					return err
				})
			})
			b.Run("AddGroupMember", func(b *testing.B) {
				run := time.Now().UnixNano()
				measure(b, func(n int) error {
					user := fmt.Sprintf("new_%d_%d", run, n)
					c, err := s.AddMember(ctx, store.MembershipEvent{ActivityID: seedActivity(pick()), UserID: user, EventTime: eventTime,
						Notice: store.Notice{Text: user + " joined {group_name}", IdempotencyKey: "join-" + user}})
					if err == nil && !c.Applied {
						err = fmt.Errorf("join of %s not applied: %+v", user, c)
					}
					return err
				})
			})
			b.Run("ListGroupMembers", func(b *testing.B) {
				measure(b, func(int) error {
					members, _, err := s.ListMembers(ctx, seedGroup(pick()), store.Page{})
					if err == nil && len(members) < scaleMembersPerGroup {
						err = fmt.Errorf("%d members listed", len(members))
					}
					return err
				})
			})
		})
	}
}

// measure runs call b.N times and reports its latency percentiles.
func measure(b *testing.B, call func(n int) error) {
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		t := time.Now()
		if err := call(n); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

func countLabel(n int) string {
	if n >= 1_000_000 && n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

func seedGroup(i int) string    { return fmt.Sprintf("grp_seed_%07d", i) }
func seedActivity(i int) string { return fmt.Sprintf("act_seed_%07d", i) }

// seedSQLite is the SQL fast path of the scale benchmark: it fills the
// store's database file at path, with the store closed, with groups groups
// (ids seedGroup(i), activities seedActivity(i)) of scaleMembersPerGroup
// joined members each, its owner first, in one transaction of two INSERT …
// SELECT statements over a recursive counter. The rows are those the store
// itself writes for a CreateGroup and its joins.
func seedSQLite(ctx context.Context, path string, groups int) error {
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const micros = 1717200000000000 // 2024-06-01
	if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
		INSERT INTO groups (group_id, activity_id, name, owner_id, created_at)
		SELECT printf('grp_seed_%07d', i), printf('act_seed_%07d', i), 'Seed ' || i, printf('owner_%07d', i), ?2 FROM n`,
		groups, micros); err != nil {
		return fmt.Errorf("seed groups: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
		INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, event_nanos, joined_at)
		SELECT printf('grp_seed_%07d', i / ?2),
			CASE i % ?2 WHEN 0 THEN printf('owner_%07d', i / ?2) ELSE printf('user_%07d', (i * 7919) % 1000003) END,
			CASE i % ?2 WHEN 0 THEN 1 ELSE 2 END, 'joined', 'none', ?3 + i % ?2, 0, ?3 + i % ?2 FROM n`,
		groups*scaleMembersPerGroup, scaleMembersPerGroup, micros); err != nil {
		return fmt.Errorf("seed members: %w", err)
	}
	return tx.Commit()
}
