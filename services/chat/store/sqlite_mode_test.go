package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/activitychat/chat/services/chat/store"
)

// TestSQLiteFileModes: the data directory and every SQLite file the store
// creates are private to the service's user.
func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	file := filepath.Join(dir, "chat.db")
	ctx := context.Background()
	s, err := store.Open(ctx, store.DriverSQLite, file)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_1", OwnerID: "owner", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		dir:           0o700 | os.ModeDir,
		file:          0o600,
		file + "-wal": 0o600,
		file + "-shm": 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", filepath.Base(path), fi.Mode(), want)
		}
	}
}
