package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/activitychat/chat/services/chat/store"
	"github.com/activitychat/chat/services/chat/store/storetest"
)

func openSQLite(tb testing.TB) store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), store.DriverSQLite, filepath.Join(tb.TempDir(), "data", "chat.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openSQLite)
}

func TestSQLiteInMemory(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) store.Store {
		s, err := store.Open(context.Background(), store.DriverSQLite, ":memory:")
		if err != nil {
			tb.Fatalf("open sqlite: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSQLiteReopen(t *testing.T) {
	// Migrations run once; a reopened file keeps its data.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := store.Open(ctx, store.DriverSQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_1", OwnerID: "user_1", Name: "Hike"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, store.DriverSQLite, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GroupByActivityID(ctx, "act_1")
	if err != nil || got != g {
		t.Errorf("after reopen: %+v, %v; want %+v", got, err, g)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, driver, dsn string
	}{
		{"unknown driver", "mysql", "x"},
		{"empty sqlite path", store.DriverSQLite, ""},
		{"sqlite directory cannot be created", store.DriverSQLite, "/proc/chat-test/chat.db"},
		{"bad postgres dsn", store.DriverPostgres, "postgres://a:b@host:notaport/db"},
		{"unreachable postgres", store.DriverPostgres, "postgres://chat:secret@127.0.0.1:1/chat?connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), tt.driver, tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}
