package configfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/internal/configfile"
)

type testConfig struct {
	Name     string        `yaml:"Name"`
	Port     int           `yaml:"Port"`
	Wait     time.Duration `yaml:"Wait"`
	Endpoint string        `yaml:"Endpoint"`
	Token    string        `yaml:"Token" secret:"true"`
	Listen   string        `yaml:"Listen"`
	Tokens   []string      `yaml:"Tokens" secret:"true"`
	Nested   struct {
		Level string `yaml:"Level"`
	} `yaml:"Nested"`
}

func env(vars map[string]string) configfile.LookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func decode(t *testing.T, yaml string, vars map[string]string) (*testConfig, *configfile.Sources, error) {
	t.Helper()
	var c testConfig
	src, err := configfile.Decode([]byte(yaml), &c, env(vars))
	return &c, src, err
}

// TestEveryMissingVariableAtOnce: all unset variables are reported in one
// error, each against its key and line, and a secret's hint suggests no
// default.
func TestEveryMissingVariableAtOnce(t *testing.T) {
	_, _, err := decode(t, "Endpoint: ${CHAT_ENDPOINT}\nToken: ${CHAT_TOKEN}\nTokens: ['${OTHER_TOKEN}']\n", nil)
	if err == nil {
		t.Fatal("Decode succeeded")
	}
	var es configfile.Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("err = %v, want 3 problems", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"3 problems:",
		"Endpoint (line 1): environment variable CHAT_ENDPOINT is not set: set it, or write ${CHAT_ENDPOINT:-value} in the file for a default",
		"Token (line 2): environment variable CHAT_TOKEN is not set: set it in the environment (it holds a secret, so the file gives no default)",
		"Tokens[0] (line 3): environment variable OTHER_TOKEN is not set: set it in the environment",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "CHAT_TOKEN:-") || strings.Contains(msg, "OTHER_TOKEN:-") {
		t.Errorf("error %q suggests a default for a secret", msg)
	}
}

// TestBadValueFromEnvironmentNamesTheVariable: a value of the wrong type
// that came from the environment is reported against the variable.
func TestBadValueFromEnvironmentNamesTheVariable(t *testing.T) {
	_, _, err := decode(t, "Name: x\nPort: ${APP_PORT:-80}\n", map[string]string{"APP_PORT": "eighty"})
	if err == nil || err.Error() != "Port (line 2, from environment variable APP_PORT): must be an integer" {
		t.Fatalf("err = %v", err)
	}
}

// TestValuesAreNeverEchoed: yaml's own type errors quote the start of the
// value; a secret written under the wrong key must not reach the log.
func TestValuesAreNeverEchoed(t *testing.T) {
	for _, yaml := range []string{
		"Port: hunter2-secret\n",
		"Wait: hunter2-secret\n",
		"Port: ${S}\n",
		"Nested: hunter2-secret\n",
	} {
		_, _, err := decode(t, yaml, map[string]string{"S": "hunter2-secret"})
		if err == nil {
			t.Fatalf("%q: Decode succeeded", yaml)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %q echoes the value", yaml, err)
		}
	}
}

// TestSyntaxErrorHint: the README's old flow-map line with ${...} inside
// braces fails with a hint at quoting or block style.
func TestSyntaxErrorHint(t *testing.T) {
	_, _, err := decode(t, "Name: x\nNested: {Level: postgres://chat:${PW}@h/db}\n", nil)
	if err == nil {
		t.Fatal("Decode succeeded")
	}
	for _, want := range []string{"not valid YAML, near line", "must be quoted", "one key per line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestUnknownKeySuggestsAndLists(t *testing.T) {
	_, _, err := decode(t, "Name: x\nListenn: y\nNested:\n  Levle: info\n", nil)
	want := "2 problems:\n  Listenn (line 2): unknown key (did you mean Listen? known keys of the top level: Endpoint, Listen, Name, Nested, Port, Tokens, Token, Wait)"
	if err == nil || !strings.HasPrefix(err.Error(), strings.Replace(want, "Tokens, Token", "Token, Tokens", 1)) {
		t.Fatalf("err = %v\nwant prefix %s", err, want)
	}
	if !strings.Contains(err.Error(), "Nested.Levle (line 4): unknown key (did you mean Level? known keys of Nested: Level)") {
		t.Errorf("err = %v, want Nested.Levle with a suggestion", err)
	}
}

func TestSourcesHintAndAnnotate(t *testing.T) {
	c, src, err := decode(t, "Name: x\nListen: ${APP_LISTEN:-127.0.0.1:80}\nPort: ${APP_PORT}\n", map[string]string{"APP_PORT": "0"})
	if err != nil {
		t.Fatal(err)
	}
	src.File = "app.yaml"
	if c.Listen != "127.0.0.1:80" || c.Port != 0 {
		t.Errorf("decoded %+v", c)
	}
	if got, want := src.Hint("Listen"), "set APP_LISTEN or change Listen (app.yaml line 2)"; got != want {
		t.Errorf("Hint = %q, want %q", got, want)
	}
	if got, want := src.Hint("Name"), "change Name (app.yaml line 1)"; got != want {
		t.Errorf("Hint = %q, want %q", got, want)
	}
	var p configfile.Problems
	p.Add("Port", "must be positive")
	p.Add("Wait", "must be set")
	if got, want := src.Annotate(p.Err()).Error(), "2 problems:\n  Port (line 3, from environment variable APP_PORT): must be positive\n  Wait: must be set"; got != want {
		t.Errorf("Annotate = %q, want %q", got, want)
	}
}

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	second := filepath.Join(dir, "b.yaml")
	if err := os.WriteFile(second, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "a.yaml")
	if got, err := configfile.Locate("", first, second); err != nil || got != second {
		t.Errorf("Locate = %q, %v, want %q", got, err, second)
	}
	if got, err := configfile.Locate("given.yaml", first, second); err != nil || got != "given.yaml" {
		t.Errorf("Locate with a path = %q, %v", got, err)
	}
	if _, err := configfile.Locate("", first); err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), "pass -f FILE") {
		t.Errorf("Locate of nothing = %v, want the places searched and -f", err)
	}
}

func TestExpand(t *testing.T) {
	got, names, errs := configfile.Expand("a-${X}-${Y:-d{b}}-$$-${Z}", env(map[string]string{"X": "x"}))
	if got != "a-x-d{b}-$-" || len(names) != 3 || len(errs) != 1 {
		t.Errorf("Expand = %q %v %v", got, names, errs)
	}
}
