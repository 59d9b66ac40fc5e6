package chatserver_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chat/chatserver"
)

func TestLoadShippedConfigs(t *testing.T) {
	t.Setenv("CHAT_TOKEN", "s3cret")
	tests := []struct {
		file string
		want chatserver.Config
	}{
		{"chat.yaml", chatserver.Config{
			Name: "chat.rpc", ListenOn: "127.0.0.1:8080", Mode: "dev",
			Database: chatserver.DatabaseConfig{Driver: "sqlite", DSN: "./data/chat.db"},
			Auth:     chatserver.AuthConfig{Tokens: []string{}},
			Log:      chatserver.LogConfig{Level: "info", Encoding: "text"},
		}},
		{"chat.docker.yaml", chatserver.Config{
			Name: "chat.rpc", ListenOn: "0.0.0.0:8080", Mode: "prod",
			Database: chatserver.DatabaseConfig{Driver: "postgres", DSN: "postgres://chat:pw@db:5432/chat"},
			Auth:     chatserver.AuthConfig{Tokens: []string{"s3cret"}},
			Log:      chatserver.LogConfig{Level: "info", Encoding: "json"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if tt.file == "chat.docker.yaml" {
				t.Setenv("CHAT_DB_DSN", "postgres://chat:pw@db:5432/chat")
			}
			got, err := chatserver.Load(filepath.Join("..", "etc", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got = chatserver.WithoutOrigin(got); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const valid = "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {Driver: sqlite, DSN: ./chat.db}\n"
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"unknown top-level key", valid + "Foo: 1\n", []string{"Foo (line 4): unknown key (known keys of the top level: Auth, Database, Limits, ListenOn, Log, Mode, Name)"}},
		{"unknown nested key", "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {Drvier: sqlite, DSN: x}\n", []string{"Database.Drvier (line 3): unknown key (did you mean Driver? known keys of Database: DSN, Driver)"}},
		{"keys are case-sensitive", valid + "log: {level: info}\n", []string{"log (line 4): unknown key (did you mean Log?"}},
		{"bad driver", "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {Driver: mysql, DSN: x}\n", []string{`Database.Driver (line 3): "mysql" is not sqlite or postgres`}},
		{"missing DSN", "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {Driver: sqlite}\n", []string{"Database.DSN: must not be empty"}},
		{"postgres URL with sqlite", "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {Driver: sqlite, DSN: 'postgres://h/db'}\n", []string{"Database.DSN (line 3): is a PostgreSQL URL"}},
		{"ListenOn without port", "ListenOn: localhost\nMode: dev\nDatabase: {DSN: x}\n", []string{`ListenOn (line 1): "localhost" is not host:port`}},
		{"ListenOn port out of range", "ListenOn: 127.0.0.1:99999\nMode: dev\nDatabase: {DSN: x}\n", []string{`ListenOn (line 1): "127.0.0.1:99999" has no port number from 0 to 65535`}},
		{"bad mode", "ListenOn: :8080\nMode: staging\nDatabase: {DSN: x}\nAuth: {Tokens: [t]}\n", []string{`Mode (line 2): "staging"`}},
		{"prod without tokens", "ListenOn: :8080\nMode: prod\nDatabase: {DSN: x}\n", []string{"Auth.Tokens: must hold at least one token"}},
		{"default mode is prod", "ListenOn: :8080\nDatabase: {DSN: x}\n", []string{"Auth.Tokens: must hold at least one token"}},
		{"blank token", valid + "Auth: {Tokens: ['a b']}\n", []string{"Auth.Tokens[0]"}},
		{"bad log level", valid + "Log: {Level: loud}\n", []string{`Log.Level (line 4): "loud"`}},
		{"bad log encoding", valid + "Log: {Encoding: xml}\n", []string{`Log.Encoding (line 4): "xml" is not text or json`}},
		{"unset variable", "ListenOn: :8080\nMode: dev\nDatabase: {DSN: '${CHAT_TEST_UNSET_VAR}'}\n", []string{"Database.DSN (line 3): environment variable CHAT_TEST_UNSET_VAR is not set: set it in the environment (it holds a secret, so the file gives no default)"}},
		{"unset token variable", valid + "Auth: {Tokens: ['${CHAT_TEST_UNSET_VAR}']}\n", []string{"Auth.Tokens[0] (line 4): environment variable CHAT_TEST_UNSET_VAR"}},
		{"wrong type", valid + "Auth: {Tokens: token}\n", []string{"Auth.Tokens (line 4): must be a list, such as [a, b]"}},
		{"several problems", "ListenOn: nope\nMode: x\nDatabase: {Driver: y, DSN: z}\n", []string{"4 problems:\n", "ListenOn (line 1):", "Mode (line 2):", "Database.Driver (line 3):", "Auth.Tokens: must hold"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chatserver.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestParseEnvAndDefaults(t *testing.T) {
	t.Setenv("CHAT_TEST_TOKEN", "tok")
	t.Setenv("CHAT_TEST_PORT", "9090")
	cfg, err := chatserver.Parse([]byte("ListenOn: 127.0.0.1:${CHAT_TEST_PORT}\n" +
		"Database: {DSN: '${CHAT_TEST_UNSET_VAR:-postgresql://h/db}'}\n" +
		"Auth: {Tokens: ['${CHAT_TEST_TOKEN}', literal$text, '${CHAT_TEST_TOKEN:-x}']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := chatserver.Config{
		Name: "chat.rpc", ListenOn: "127.0.0.1:9090", Mode: "prod",
		Database: chatserver.DatabaseConfig{Driver: "postgres", DSN: "postgresql://h/db"},
		Auth:     chatserver.AuthConfig{Tokens: []string{"tok", "literal$text", "tok"}},
		Log:      chatserver.LogConfig{Level: "info", Encoding: "json"},
	}
	if cfg = chatserver.WithoutOrigin(cfg); !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse = %+v\nwant %+v", cfg, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := chatserver.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

func TestNewDatabaseErrors(t *testing.T) {
	tests := []struct {
		name string
		db   chatserver.DatabaseConfig
	}{
		{"unreachable postgres", chatserver.DatabaseConfig{Driver: "postgres", DSN: "postgres://chat:hunter2@127.0.0.1:1/chat?connect_timeout=3"}},
		{"sqlite directory not creatable", chatserver.DatabaseConfig{Driver: "sqlite", DSN: "/proc/chat-test/chat.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := chatserver.New(testConfig(tt.db), nil)
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), "Database.DSN") {
				t.Errorf("error %q does not name Database.DSN", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestListenOnInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(backends[0].database(t))
	cfg.ListenOn = ln.Addr().String()
	srv, err := chatserver.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = srv.ListenAndServe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ListenOn") {
		t.Errorf("ListenAndServe = %v, want an error naming ListenOn", err)
	}
}

func TestMain(m *testing.M) {
	os.Unsetenv("CHAT_TEST_UNSET_VAR")
	os.Exit(m.Run())
}

func TestParseLimits(t *testing.T) {
	const base = "ListenOn: 127.0.0.1:8080\nMode: dev\nDatabase: {DSN: ./chat.db}\n"
	cfg, err := chatserver.Parse([]byte(base + "Limits: {MaxConns: 10, BodyTimeout: 5s, MaxEventSkew: 1h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (chatserver.LimitsConfig{MaxConns: 10, BodyTimeout: 5 * time.Second, MaxEventSkew: time.Hour}); cfg.Limits != want {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, want)
	}
	for yaml, want := range map[string]string{
		"Limits: {MaxConns: -1}\n":      "Limits.MaxConns (line 4): must not be negative",
		"Limits: {BodyTimeout: -1s}\n":  "Limits.BodyTimeout (line 4): must not be negative",
		"Limits: {MaxEventSkew: -1h}\n": "Limits.MaxEventSkew (line 4): must not be negative",
		"Limits: {Conns: 1}\n":          "Limits.Conns (line 4): unknown key (known keys of Limits: BodyTimeout, MaxConns, MaxEventSkew)",
	} {
		if _, err := chatserver.Parse([]byte(base + yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", yaml, err, want)
		}
	}
}
