package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/activitychat/chat/services/internal/testwait"
)

// TestPostgresPagingBehindHeldWriter holds one writer's transaction open
// after it has stored a message, as a slow commit does, while a second
// writer stores another message in the same group. A reader that lists the
// group meanwhile must see a prefix of what it sees once both committed:
// had the second message become visible first, under a larger position, a
// reader paging past it would never see the first.
func TestPostgresPagingBehindHeldWriter(t *testing.T) {
	base := os.Getenv("CHAT_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("CHAT_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	dsn := ownSchema(t, base)
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g, _, err := s.CreateGroup(ctx, NewGroup{ActivityID: "act_1", OwnerID: "owner_1", Name: "Hike"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SendSystemMessage(ctx, NewMessage{GroupID: g.ID, Text: "first"}); err != nil {
		t.Fatal(err)
	}

	held, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)
	tx, err := held.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var seq int64
	if err := tx.QueryRow(ctx, postgresSend, newMessageID(), g.ID, "held", "", nil, now()).Scan(&seq); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := s.SendSystemMessage(ctx, NewMessage{GroupID: g.ID, Text: "second"})
		done <- err
	}()
	// Wait until the second writer has committed or waits for the held one.
	var finished bool
	testwait.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
			return nil
		default:
		}
		var blocked int
		if err := s.(*postgresStore).pool.QueryRow(ctx,
			`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`,
			held.PgConn().PID()).Scan(&blocked); err != nil {
			return err
		}
		if blocked == 0 {
			return errors.New("the second writer neither finished nor waits")
		}
		return nil
	})
	before := listTexts(t, s, g.ID)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	after := listTexts(t, s, g.ID)
	if len(after) != 3 || !slices.Equal(after[:len(before)], before) {
		t.Errorf("listed %q while a writer was in flight, %q after: a reader past %q skips %q",
			before, after, before[len(before)-1], "held")
	}
}

// listTexts pages through a group's messages one at a time.
func listTexts(t *testing.T, s Store, groupID string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		msgs, next, err := s.ListMessages(context.Background(), groupID, Page{Size: 1, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			out = append(out, m.Text)
		}
		if next == "" {
			return out
		}
		token = next
	}
}

// ownSchema creates a schema of the test's own in the database of base, a
// URL, and returns base with its search_path.
func ownSchema(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "chat_paging_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("CHAT_TEST_POSTGRES_DSN must be a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
