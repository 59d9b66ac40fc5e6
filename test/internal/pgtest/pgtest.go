// Package pgtest gives an end-to-end test a PostgreSQL schema of its own in
// the database that .ci/postgres sets up on the host (127.0.0.1:5432).
//
// No PostgreSQL image can be pulled here, so the chat service's container
// runs in the host's network and reaches that server on loopback.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/activitychat/chat/test/internal/harness"
)

// DSNEnv names the environment variable with the base DSN, for example
// postgres://chat:chat@127.0.0.1:5432/chat_test?sslmode=disable.
const DSNEnv = "CHAT_TEST_POSTGRES_DSN"

// Schema creates a uniquely named schema in the database DSNEnv names,
// drops it when tb ends, and returns a DSN whose search_path is that schema.
// Without DSNEnv the test skips, or fails under CI=true.
func Schema(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(DSNEnv)
	if base == "" {
		harness.Require(tb, errors.New(DSNEnv+" is not set; .ci/postgres sets up the database it names"))
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL: %q", DSNEnv, base)
	}

	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "e2e_" + hex.EncodeToString(b[:])
	if err := exec(base, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		if err := exec(base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

// Tables lists the tables of the schema that dsn's search_path names, to
// prove that a service stored its data there.
func Tables(ctx context.Context, dsn string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
