// Package harness sets up the environment of the end-to-end tests: it
// configures testcontainers for this machine (no Ryuk, no pulls, traffic to
// loopback only), labels every container and network a test run creates, and
// sweeps what a run left behind.
//
// Every test package that starts containers uses it from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log"
	"os"
	"strconv"
	"testing"
	"time"
)

// Label is the label every container and network of the suite carries, with
// the value "true". Sweeps select by it.
const Label = "com.activitychat.e2e"

// SessionLabel names the test process that created a resource, so that the
// sweep at the end of a run removes only its own resources while another test
// package of the same `go test` invocation is still running.
const SessionLabel = "com.activitychat.e2e.session"

// PIDLabel holds the process id of the test binary that created a resource.
// The sweep at the start of a run removes resources whose process is gone.
const PIDLabel = "com.activitychat.e2e.pid"

var session = newSession()

func newSession() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// Session returns the id of this test process's session.
func Session() string { return session }

// Labels returns a new map with the labels that every container and network
// the suite creates must carry.
func Labels() map[string]string {
	return map[string]string{
		Label:        "true",
		SessionLabel: session,
		PIDLabel:     strconv.Itoa(os.Getpid()),
	}
}

// Env is the environment Main sets before any container starts.
//
// Ryuk, testcontainers' reaper, is an image that cannot be pulled here, so it
// is off and the sweeps do its work. The host override stops testcontainers
// from guessing a gateway address: every mapped port is reached on localhost.
var Env = map[string]string{
	"TESTCONTAINERS_RYUK_DISABLED": "true",
	"TESTCONTAINERS_HOST_OVERRIDE": "localhost",
}

// Setup sets Env in the process environment. Main calls it; tests that do
// not go through Main can call it themselves.
func Setup() {
	for k, v := range Env {
		if err := os.Setenv(k, v); err != nil {
			panic(err)
		}
	}
}

// Main sets up the environment, removes the containers and networks that
// earlier runs left behind, runs the tests, removes this run's containers and
// networks and returns the exit code for os.Exit.
func Main(m *testing.M) int {
	Setup()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if n, err := Sweep(ctx, Stale); err != nil {
		log.Printf("harness: sweep before the run: %v", err)
	} else if n > 0 {
		log.Printf("harness: removed %d leftover containers and networks of earlier runs", n)
	}
	cancel()

	code := m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := Sweep(ctx, Mine); err != nil {
		log.Printf("harness: sweep after the run: %v", err)
		if code == 0 {
			code = 1
		}
	} else if n > 0 {
		log.Printf("harness: removed %d containers and networks the tests did not clean up", n)
	}
	return code
}

// CI reports whether the tests run in CI (CI=true), where a missing
// prerequisite fails a test instead of skipping it.
func CI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Require ends tb when err, a missing prerequisite, is not nil: it fails in
// CI and skips elsewhere, with the reason in both cases.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if CI() {
		tb.Fatalf("prerequisite missing (CI=true, so this fails instead of skipping): %v", err)
	}
	tb.Skipf("prerequisite missing: %v", err)
}

// Deadline returns a context for tb that ends at d from now, or earlier when
// the test binary's own deadline comes first, so that a hanging step fails
// with a message instead of killing the whole binary.
func Deadline(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	end := time.Now().Add(d)
	if td, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := td.Deadline(); ok && dl.Add(-10*time.Second).Before(end) {
			end = dl.Add(-10 * time.Second)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	tb.Cleanup(cancel)
	return ctx
}

// Step logs how long a named part of a test took when the returned function
// is called; scenario notes quote these durations.
func Step(tb testing.TB, name string) func() {
	tb.Helper()
	start := time.Now()
	return func() {
		tb.Helper()
		tb.Logf("duration %s: %s", name, time.Since(start).Round(10*time.Millisecond))
	}
}
