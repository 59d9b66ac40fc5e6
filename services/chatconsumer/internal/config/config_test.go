package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// env returns a LookupFunc over vars.
func env(vars map[string]string) config.LookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// minimal is a valid prod configuration the cases below extend.
const minimal = `
Mode: prod
ChatRpc:
  Endpoint: http://chat:8080
Nats:
  Url: nats://nats:4222
`

func TestParseErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{
			name: "unknown top-level key",
			yaml: minimal + "Redis:\n  Host: x\n",
			want: "Redis (line 7): unknown key (known keys of the top level: ChatRpc, Embedded, Log, Messaging, Mode, Name, Nats, Notices)",
		},
		{
			name: "unknown nested key",
			yaml: minimal + "Messaging:\n  Retry:\n    Multiplyer: 2\n",
			want: "Messaging.Retry.Multiplyer (line 9): unknown key (did you mean Multiplier? known keys of Messaging.Retry: InitialInterval, MaxHold, MaxInterval, MaxRetries, Multiplier)",
		},
		{
			name: "multiplier below one",
			yaml: minimal + "Messaging:\n  Retry:\n    Multiplier: 0.5\n",
			want: "Messaging.Retry.Multiplier (line 9): must be at least 1, got 0.5 (applied to the contract policy of activity.created)",
		},
		{
			name: "multiplier not a number",
			yaml: minimal + "Messaging:\n  Retry:\n    Multiplier: fast\n",
			want: "Messaging.Retry.Multiplier (line 9): must be a number",
		},
		{
			name: "bad duration",
			yaml: minimal + "Messaging:\n  AckWait: 10x\n",
			want: "Messaging.AckWait (line 8): must be a duration such as 100ms or 1m30s",
		},
		{
			name: "max interval below initial",
			yaml: minimal + "Messaging:\n  Retry:\n    InitialInterval: 1s\n    MaxInterval: 10ms\n",
			want: "Messaging.Retry.MaxInterval (line 10): (10ms) must not be less than InitialInterval (1s) (applied to the contract policy of activity.created)",
		},
		{
			name: "initial interval past the contract's max",
			yaml: minimal + "Messaging:\n  Retry:\n    InitialInterval: 20s\n",
			want: "Messaging.Retry.MaxInterval: (10s) must not be less than InitialInterval (20s) (applied to the contract policy of activity.created)",
		},
		{
			name: "negative retries",
			yaml: minimal + "Messaging:\n  Retry:\n    MaxRetries: -1\n",
			want: "Messaging.Retry.MaxRetries (line 9): must be between 0 and 1000, got -1 (applied to the contract policy of activity.created)",
		},
		{
			name: "unknown mode",
			yaml: "Mode: staging\n",
			want: "Mode (line 1): must be one of dev, prod, got \"staging\"",
		},
		{
			name: "mapping expected",
			yaml: minimal + "Messaging: 3\n",
			want: "Messaging (line 7): must be a mapping of keys",
		},
		{
			name: "scalar expected",
			yaml: minimal + "Messaging:\n  Concurrency: [1, 2]\n",
			want: "Messaging.Concurrency (line 8): must be a single value, an integer",
		},
		{
			name: "unset environment variable",
			yaml: "Mode: prod\nNats:\n  Url: nats://n:4222\nChatRpc:\n  Endpoint: http://chat:8080\n  Token: ${CHAT_TOKEN}\n",
			want: "ChatRpc.Token (line 6): environment variable CHAT_TOKEN is not set: set it in the environment (it holds a secret, so the file gives no default)",
		},
		{
			name: "missing chat endpoint",
			yaml: "Mode: prod\nNats:\n  Url: nats://n:4222\n",
			want: "ChatRpc.Endpoint: must not be empty",
		},
		{
			name: "missing nats url",
			yaml: "Mode: prod\nChatRpc:\n  Endpoint: http://chat:8080\n",
			want: "Nats.Url: must not be empty unless Embedded.Nats.Enabled is true",
		},
		{
			name: "bad nats scheme",
			yaml: "Mode: prod\nChatRpc:\n  Endpoint: http://chat:8080\nNats:\n  Url: http://n:4222\n",
			want: "Nats.Url scheme (line 5): must be one of nats, tls, ws, wss, got \"http\"",
		},
		{
			name: "embedded in prod",
			yaml: minimal + "Embedded:\n  Nats:\n    Enabled: true\n",
			want: "Embedded (line 7): embedded services run only in Mode dev",
		},
		{
			name: "bad sync policy",
			yaml: "Embedded:\n  Nats:\n    Enabled: true\n    Sync: sometimes\n  Chat:\n    Enabled: true\n",
			want: "Embedded.Nats.Sync (line 4): must be one of interval, always, got \"sometimes\"",
		},
		{
			name: "bad listen address",
			yaml: "Embedded:\n  Nats:\n    Enabled: true\n    Listen: localhost\n  Chat:\n    Enabled: true\n",
			want: "Embedded.Nats.Listen (line 4): must be host:port, got \"localhost\"",
		},
		{
			name: "cert without key",
			yaml: "Mode: prod\nChatRpc:\n  Endpoint: http://chat:8080\nNats:\n  Url: nats://n:4222\n  TLS:\n    CertFile: c.pem\n",
			want: "Nats.TLS.KeyFile: CertFile and KeyFile go together",
		},
		{
			name: "empty notice",
			yaml: minimal + "Notices:\n  Joined: \"\"\n",
			want: "Notices.Joined (line 8): must hold 1 to 4000 characters, got 0",
		},
		{
			name: "key given twice",
			yaml: minimal + "Nats:\n  Url: nats://other:4222\n",
			want: "Nats (line 7): given twice, first at line 5",
		},
		{
			name: "not yaml",
			yaml: "Mode: [dev\n",
			want: "not valid YAML",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// No Retry key: no override, each event's contract policy applies.
	if o := cfg.Messaging.Retry.Override(); !o.IsZero() {
		t.Errorf("default retry override = %+v, want none", o)
	}
	if cfg.Messaging.ServiceName != "chat.consumer" || !cfg.Messaging.EnableMetrics {
		t.Errorf("Messaging = %+v, want ServiceName chat.consumer with metrics", cfg.Messaging)
	}
	if cfg.Notices.Joined != config.DefaultJoinedNotice {
		t.Errorf("Notices.Joined = %q, want the default", cfg.Notices.Joined)
	}
}

func TestParseEnvironment(t *testing.T) {
	vars := map[string]string{
		"CONC":   "8",
		"TOKEN":  "s3cr$t: {not yaml}",
		"MULT":   "1.5",
		"EMPTY":  "",
		"ENABLE": "false",
	}
	cfg, err := config.Parse([]byte(`
Mode: prod
Nats:
  Url: nats://nats:4222
ChatRpc:
  Endpoint: http://chat:8080
  Token: ${TOKEN}
  Timeout: ${TIMEOUT:-250ms}
Messaging:
  Concurrency: ${CONC}
  EnableMetrics: "${ENABLE}"
  ServiceName: ${EMPTY:-svc}-$${literal}
  Retry:
    Multiplier: ${MULT}
Notices:
  Created: ${UNSET:-建好了「{title}」}
`), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"token is taken as it is", cfg.ChatRpc.Token, "s3cr$t: {not yaml}"},
		{"default duration", cfg.ChatRpc.Timeout, 250 * time.Millisecond},
		{"integer from env", cfg.Messaging.Concurrency, 8},
		{"quoted bool from env", cfg.Messaging.EnableMetrics, false},
		{"empty var takes the default, $$ escapes", cfg.Messaging.ServiceName, "svc-${literal}"},
		{"float from env", *cfg.Messaging.Retry.Multiplier, 1.5},
		{"default with braces", cfg.Notices.Created, "建好了「{title}」"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
}

func TestShippedConfigs(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
		want func(t *testing.T, cfg *config.Config)
	}{
		{
			file: "consumer.yaml",
			env:  map[string]string{},
			want: func(t *testing.T, cfg *config.Config) {
				if !cfg.Embedded.Nats.Enabled || !cfg.Embedded.Chat.Enabled {
					t.Error("dev config does not embed NATS and chat")
				}
				if got := cfg.NatsURL(); got != "nats://127.0.0.1:4222" {
					t.Errorf("NatsURL() = %q", got)
				}
				if got := cfg.ChatEndpoint(); got != "http://127.0.0.1:8080" {
					t.Errorf("ChatEndpoint() = %q", got)
				}
				if got, want := cfg.Embedded.Nats.StoreDir, filepath.Join(".data/chatconsumer", "nats"); got != want {
					t.Errorf("StoreDir = %q, want %q", got, want)
				}
				if got, want := cfg.Embedded.Chat.Database.DSN, filepath.Join(".data/chatconsumer", "chat.db"); got != want {
					t.Errorf("DSN = %q, want %q", got, want)
				}
			},
		},
		{
			file: "consumer.yaml",
			env:  map[string]string{"CHATCONSUMER_DATA_DIR": "/tmp/b", "CHATCONSUMER_NATS_LISTEN": "127.0.0.1:5222"},
			want: func(t *testing.T, cfg *config.Config) {
				if cfg.Embedded.Nats.StoreDir != "/tmp/b/nats" || cfg.NatsURL() != "nats://127.0.0.1:5222" {
					t.Errorf("second stack: StoreDir %q, NatsURL %q", cfg.Embedded.Nats.StoreDir, cfg.NatsURL())
				}
			},
		},
		{
			file: "consumer.prod.yaml",
			env:  map[string]string{"NATS_URL": "nats://n1:4222,nats://n2:4222", "CHAT_ENDPOINT": "http://chat:8080", "CHAT_TOKEN": "t"},
			want: func(t *testing.T, cfg *config.Config) {
				if cfg.Mode != config.ModeProd || cfg.Embedded.Nats.Enabled || cfg.ChatRpc.Token != "t" {
					t.Errorf("prod config = %+v", cfg)
				}
				if cfg.Notices.Left != config.DefaultLeftNotice {
					t.Errorf("Notices.Left = %q, want the default", cfg.Notices.Left)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "etc", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(data, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, cfg)
		})
	}
	t.Run("prod without secrets", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("..", "..", "etc", "consumer.prod.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = config.Parse(data, env(map[string]string{"NATS_URL": "nats://n:4222", "CHAT_ENDPOINT": "http://chat:8080"}))
		if err == nil || !strings.Contains(err.Error(), "ChatRpc.Token (line 17): environment variable CHAT_TOKEN is not set: set it in the environment (it holds a secret, so the file gives no default)") {
			t.Fatalf("err = %v, want ChatRpc.Token named", err)
		}
	})
}

func TestErrorsHidePasswords(t *testing.T) {
	_, err := config.Parse([]byte("Mode: prod\nChatRpc:\n  Endpoint: http://chat:8080\nNats:\n  Url: ftp://user:hunter2@n:4222\n"), env(nil))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %q shows the password", err)
	}
}

// TestRetryOverridesOnlyWhatIsSet checks that the Retry keys a file sets
// override the contract's policy and the others stay unset, also when an
// environment reference with an empty default leaves a key out.
func TestRetryOverridesOnlyWhatIsSet(t *testing.T) {
	cfg, err := config.Parse([]byte(minimal+"Messaging:\n  Retry:\n    MaxRetries: 0\n    MaxHold: ${HOLD:-}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Messaging.Retry.Override()
	if o.MaxRetries == nil || *o.MaxRetries != 0 || o.InitialInterval != nil || o.MaxInterval != nil || o.Multiplier != nil || o.MaxHold != nil {
		t.Errorf("override = %+v, want only MaxRetries 0", o)
	}
	cfg, err = config.Parse([]byte(minimal+"Messaging:\n  Retry:\n    MaxHold: ${HOLD:-}\n"), env(map[string]string{"HOLD": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Messaging.Retry.MaxHold; h == nil || *h != 5*time.Second {
		t.Errorf("MaxHold = %v, want 5s from HOLD", h)
	}
}
