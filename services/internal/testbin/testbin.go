// Package testbin serves tests that run a service's real program: it builds
// the binary of the package under test once per test run and captures what
// the program prints.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// A Binary is the program of the package under test (the current
// directory), built on first use.
type Binary struct {
	name string
	once sync.Once
	path string
	err  error
}

// New returns the binary named name, not built yet.
func New(name string) *Binary { return &Binary{name: name} }

// Path builds the binary on its first call and returns its path. It skips
// the test under -short and fails it when the build fails.
func (b *Binary) Path(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.name+"-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.name)
		if out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes the built binary, if any; call it from TestMain after the
// tests ran.
func (b *Binary) Remove() {
	if b.path != "" {
		_ = os.RemoveAll(filepath.Dir(b.path))
	}
}

// LockedBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
