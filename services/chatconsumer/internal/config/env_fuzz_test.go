package config

import (
	"errors"

	"github.com/activitychat/chat/services/internal/configfile"

	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The expansion fuzz targets feed arbitrary text to the ${VAR} expansion
// and arbitrary YAML to Parse. Run one with
//
//	go test -run '^$' -fuzz '^FuzzExpand$' -fuzztime 60s ./services/chatconsumer/internal/config/
//
// Seeds: the shipped configs, and the ids of the seed events of
// contracts/samples behind every ${VAR} form.

// fuzzLookup knows CHAT_FUZZ_SET and the variables the shipped configs
// use, each set to value; CHAT_FUZZ_EMPTY is set and empty; any other name
// is unset.
func fuzzLookup(value string) LookupFunc {
	return func(name string) (string, bool) {
		switch name {
		case "CHAT_FUZZ_EMPTY":
			return "", true
		case "CHAT_FUZZ_SET", "CHAT_TOKEN", "NATS_URL", "CHAT_ENDPOINT", "NATS_TOKEN", "NATS_PASSWORD":
			return value, true
		}
		return "", false
	}
}

func addExpandSeeds(f *testing.F) {
	for _, v := range []string{
		"act_123456", "${CHAT_FUZZ_SET}", "${CHAT_FUZZ_UNSET:-user_789}", "${CHAT_FUZZ_UNSET}",
		"${CHAT_FUZZ_EMPTY:-{title} joined}", "pre${CHAT_FUZZ_SET}post$", "$$${CHAT_FUZZ_SET}", "${", "${}", "${1A}",
		"${CHAT_FUZZ_UNSET:-${CHAT_FUZZ_SET}}", "p@$$w0rd$",
	} {
		f.Add(v)
	}
}

func FuzzExpand(f *testing.F) {
	addExpandSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expand(s, fuzzLookup("v"))
		if !strings.Contains(s, "$") && (err != nil || out != s) {
			t.Fatalf("text without $ changed: %q -> %q, %v", s, out, err)
		}
		if err == nil && len(out) > 2*len(s) {
			t.Fatalf("%q grew to %q with one-byte values", s, out)
		}
		// Expanded text is not expanded again: a value that looks like a
		// reference to an unset variable changes nothing but the output.
		out2, err2 := expand(s, fuzzLookup("${CHAT_FUZZ_UNSET}"))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("%q: the values' text decided success: %v / %v", s, err, err2)
		}
		if err == nil && !strings.Contains(s, "${") && out != out2 {
			t.Fatalf("%q: no reference, yet the values show: %q / %q", s, out, out2)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"consumer.yaml", "consumer.prod.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "etc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seed, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "contracts", "samples", "activity.member.joined", "seed.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("Nats:\n  URL: ${CHAT_FUZZ_UNSET:-nats://127.0.0.1:4222}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse still running after 5 s on %q", data)) })
		defer watchdog.Stop()
		cfg, err := Parse(data, fuzzLookup("v"))
		cfg2, err2 := Parse(data, fuzzLookup("v"))
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cfg, cfg2) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		if err == nil {
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
			}
		}
	})
}

// expand is the shared ${VAR} expansion the loader applies to every value,
// with its errors joined.
func expand(s string, lookup LookupFunc) (string, error) {
	out, _, errs := configfile.Expand(s, lookup)
	return out, errors.Join(errs...)
}
