package store_test

import (
	"context"
	"testing"

	"github.com/activitychat/chat/services/chat/store"
	"github.com/activitychat/chat/services/chat/store/storetest"
)

func openPostgres(tb testing.TB) store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), store.DriverPostgres, storetest.PostgresDSN(tb))
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, openPostgres)
}

func TestPostgresReopen(t *testing.T) {
	// A second Open of a migrated schema applies nothing and sees the data.
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	s, err := store.Open(ctx, store.DriverPostgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_1", OwnerID: "user_1", Name: "Hike"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := store.Open(ctx, store.DriverPostgres, dsn)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, err := s2.GroupByActivityID(ctx, "act_1")
	if err != nil || got != g {
		t.Errorf("after reopen: %+v, %v; want %+v", got, err, g)
	}
}
