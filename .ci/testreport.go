//go:build ignore

// testreport reads `go test -json` on standard input and prints what plain
// `go test` would: a line per package, and the output of failing tests only.
// At the end it lists every skipped test with its reason, and names the
// PostgreSQL tests that did not run apart, with how to run them, so that a
// green run on a laptop does not pass for a full one. It exits 1 when a
// test or a build failed.
//
//	go test -json ./... | GOWORK=off go run .ci/testreport.go
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ pkg, test, reason string }

func main() {
	top := map[string][]string{}  // package and top-level test -> output, in order
	full := map[string][]string{} // package and test or subtest -> output
	var skips []skip
	failed := false
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	for in.Scan() {
		line := in.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Text that go test prints as it is, such as a setup failure.
			fmt.Println(string(line))
			continue
		}
		topTest, _, _ := strings.Cut(e.Test, "/")
		topKey, key := e.Package+"\x00"+topTest, e.Package+"\x00"+e.Test
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
		case "build-fail":
			failed = true
		case "output":
			if e.Test == "" {
				// Package lines: "ok", "FAIL", "?", panics outside tests.
				if !strings.HasPrefix(e.Output, "=== ") && e.Output != "PASS\n" {
					fmt.Print(e.Output)
				}
				continue
			}
			if !strings.HasPrefix(strings.TrimSpace(e.Output), "=== ") {
				top[topKey] = append(top[topKey], e.Output)
			}
			full[key] = append(full[key], e.Output)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{e.Package, e.Test, reason(full[key])})
			}
			delete(full, key)
			if e.Test == topTest {
				delete(top, topKey)
			}
		case "fail":
			failed = true
			if e.Test != "" && e.Test == topTest {
				for _, l := range top[topKey] {
					fmt.Print(l)
				}
				delete(top, topKey)
			}
			delete(full, key)
		case "pass":
			delete(full, key)
			if e.Test != "" && e.Test == topTest {
				delete(top, topKey)
			}
		}
	}
	report(skips)
	if failed {
		os.Exit(1)
	}
}

// reason finds the message of t.Skip in a skipped test's output.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "===") {
			continue
		}
		if _, after, ok := strings.Cut(l, ".go:"); ok {
			if _, msg, ok := strings.Cut(after, ": "); ok {
				return msg
			}
		}
		return l
	}
	return "(no reason given)"
}

func report(skips []skip) {
	if len(skips) == 0 {
		return
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	var pg, other []skip
	for _, s := range skips {
		if strings.Contains(s.reason, "CHAT_TEST_POSTGRES_DSN") {
			pg = append(pg, s)
		} else {
			other = append(other, s)
		}
	}
	if len(other) > 0 {
		fmt.Printf("\n%d tests skipped:\n", len(other))
		for _, s := range other {
			fmt.Printf("  %s %s: %s\n", short(s.pkg), s.test, s.reason)
		}
	}
	if len(pg) > 0 {
		fmt.Printf("\nPostgreSQL tests that did NOT run (%d), because CHAT_TEST_POSTGRES_DSN is not set:\n", len(pg))
		for _, s := range pg {
			fmt.Printf("  %s %s\n", short(s.pkg), s.test)
		}
		fmt.Print(`To run them, point CHAT_TEST_POSTGRES_DSN at a database the tests may create
schemas in (see "PostgreSQL" in README.md for the role and database):
  CHAT_TEST_POSTGRES_DSN='postgres://chat:PASSWORD@127.0.0.1:5432/chat_test?sslmode=disable' make test
As root on Debian or Ubuntu, make test installs and sets up PostgreSQL itself.
`)
	}
}

func short(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/activitychat/chat/")
}
