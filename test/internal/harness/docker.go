package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Docker returns a client of the Docker engine that testcontainers uses,
// configured the same way. The caller closes it.
func Docker(ctx context.Context) (*testcontainers.DockerClient, error) {
	return testcontainers.NewDockerClientWithOpts(ctx)
}

// Scope selects what Sweep removes.
type Scope int

const (
	// Stale selects the suite's resources whose test process is gone: what
	// crashed or interrupted runs left behind.
	Stale Scope = iota
	// Mine selects the resources this test process created.
	Mine
)

// Sweep force-removes the suite's containers, then its networks, in scope,
// and returns how many it removed.
func Sweep(ctx context.Context, scope Scope) (int, error) {
	cli, err := Docker(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = cli.Close() }()

	selected := func(labels map[string]string) bool {
		if labels[Label] != "true" {
			return false
		}
		switch scope {
		case Mine:
			return labels[SessionLabel] == session
		default:
			return !processAlive(labels[PIDLabel])
		}
	}
	filters := make(client.Filters).Add("label", Label+"=true")

	var errs []error
	removed := 0
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if !selected(c.Labels) {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
			continue
		}
		removed++
	}

	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if !selected(n.Labels) {
			continue
		}
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// processAlive reports whether the process with the decimal id pid exists on
// this machine. An empty or malformed id counts as gone.
func processAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	err = syscall.Kill(n, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Kill sends signal (for example "KILL" or "TERM") to ctr's main process and,
// for KILL, waits until the container has stopped. Unlike Stop, it gives the
// process no chance to shut down cleanly.
func Kill(ctx context.Context, ctr testcontainers.Container, signal string) error {
	cli, err := Docker(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()

	id := ctr.GetContainerID()
	if _, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal}); err != nil {
		return fmt.Errorf("kill %.12s with %s: %w", id, signal, err)
	}
	if signal != "KILL" && signal != "SIGKILL" && signal != "9" {
		return nil
	}
	for {
		st, err := ctr.State(ctx)
		if err != nil {
			return fmt.Errorf("state of %.12s: %w", id, err)
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %.12s still running after SIGKILL: %w", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LogLines is how many of a container's last log lines a failing test shows.
var LogLines = 200

// Cleanup registers on tb, right after a Run and before its error check, the
// removal of ctr at the end of the test and, ahead of it, a dump of ctr's
// logs under name when the test failed. A nil ctr is fine.
func Cleanup(tb testing.TB, name string, ctr testcontainers.Container) {
	tb.Helper()
	testcontainers.CleanupContainer(tb, ctr)
	tb.Cleanup(func() {
		if tb.Failed() {
			DumpLogs(tb, name, ctr)
		}
	})
}

// DumpLogs writes the last LogLines lines of ctr's output to tb's log. A nil
// ctr writes nothing.
func DumpLogs(tb testing.TB, name string, ctr testcontainers.Container) {
	tb.Helper()
	if isNil(ctr) {
		return
	}
	text, err := Logs(context.Background(), ctr, LogLines)
	if err != nil {
		tb.Logf("logs of %s: %v", name, err)
		return
	}
	tb.Logf("----- last %d lines of %s (%.12s) -----\n%s----- end of %s -----",
		LogLines, name, ctr.GetContainerID(), text, name)
}

// Logs returns the last n lines of ctr's stdout and stderr, all of it when
// n <= 0.
func Logs(ctx context.Context, ctr testcontainers.Container, n int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = rc.Close() }()

	var lines []string
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if n > 0 && len(lines) > 2*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// RepoRoot returns the root of the monorepo: the nearest directory, from the
// working directory up, that holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work in %s or any parent: the e2e tests run inside the monorepo", dir)
		}
	}
}

// Output returns ctr's stdout and stderr apart, whole: for a command whose
// stdout is data (JSON) and whose stderr is its log.
func Output(ctx context.Context, ctr testcontainers.Container) (stdout, stderr string, err error) {
	cli, err := Docker(ctx)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = cli.Close() }()
	rc, err := cli.ContainerLogs(ctx, ctr.GetContainerID(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", "", err
	}
	defer func() { _ = rc.Close() }()
	var o, e strings.Builder
	if _, err := stdcopy.StdCopy(&o, &e, rc); err != nil {
		return o.String(), e.String(), err
	}
	return o.String(), e.String(), nil
}
