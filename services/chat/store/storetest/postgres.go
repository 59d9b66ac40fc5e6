package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSNEnv names the environment variable with the DSN of the
// PostgreSQL database that tests use, for example
// postgres://chat:chat@127.0.0.1:5432/chat_test?sslmode=disable.
const PostgresDSNEnv = "CHAT_TEST_POSTGRES_DSN"

// PostgresDSN returns a DSN for a schema of its own in the database named by
// CHAT_TEST_POSTGRES_DSN: it creates a uniquely named schema, points the
// DSN's search_path at it and drops it when the test ends, so that tests and
// test runs never see each other's data.
//
// Without CHAT_TEST_POSTGRES_DSN the test is skipped, except under CI=true,
// where the test fails: CI must run the PostgreSQL tests.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(PostgresDSNEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set, and CI=true requires the PostgreSQL tests to run", PostgresDSNEnv)
		}
		tb.Skipf("%s is not set; skipping the PostgreSQL tests", PostgresDSNEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "chat_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", PostgresDSNEnv, err)
	}
	defer closeConn(ctx, tb, conn)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer closeConn(ctx, tb, conn)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(tb, base, schema)
}

// withSearchPath adds search_path to a URL or key/value DSN; pgx sends it
// to the server as a run-time parameter of every connection.
func withSearchPath(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parse %s: %v", PostgresDSNEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// closeConn closes a connection of the schema set-up, failing tb when the
// close fails.
func closeConn(ctx context.Context, tb testing.TB, conn *pgx.Conn) {
	if err := conn.Close(ctx); err != nil {
		tb.Errorf("close the set-up connection: %v", err)
	}
}
