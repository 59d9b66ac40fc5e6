package chatserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/activitychat/chat/services/chat/store"
)

// Modes of Config.Mode.
const (
	// ModeDev allows an empty Auth.Tokens, which turns authentication off.
	ModeDev = "dev"
	// ModeProd requires bearer tokens. It is the default.
	ModeProd = "prod"
)

// Config is the service's configuration, read from YAML with go-zero style
// keys:
//
//	Name: chat.rpc
//	ListenOn: 127.0.0.1:8080
//	Mode: dev
//	Database:
//	  Driver: sqlite            # or postgres
//	  DSN: ./data/chat.db       # or "postgres://user:${PGPASSWORD}@host:5432/chat"
//	Auth:
//	  Tokens: ["${CHAT_TOKEN}"] # bearer tokens; empty only in Mode: dev
//	Log:
//	  Level: info               # debug, info, warn or error
//	  Encoding: json            # json or plain
//	Limits:
//	  MaxConns: 1024            # open connections at a time
//	  BodyTimeout: 10s          # to read a request's body
//	  MaxEventSkew: 24h         # how far ahead of the clock an event time may be
//
// Any string value may hold ${VAR}, which is replaced by the environment
// variable VAR (an unset or empty VAR is an error), or ${VAR:-default}. Keys are case-sensitive,
// and an unknown key is an error.
type Config struct {
	// Name is the service's name in logs. Default: chat.rpc.
	Name string `yaml:"Name"`
	// ListenOn is the host:port to listen on; 0.0.0.0:8080 in a container.
	ListenOn string `yaml:"ListenOn"`
	// Mode is ModeDev or ModeProd. Default: ModeProd.
	Mode string `yaml:"Mode"`
	// Database selects the store.
	Database DatabaseConfig `yaml:"Database"`
	// Auth configures bearer token authentication.
	Auth AuthConfig `yaml:"Auth"`
	// Log configures the structured log.
	Log LogConfig `yaml:"Log"`
	// Limits bounds what one caller, with or without a token, can cost
	// the server.
	Limits LimitsConfig `yaml:"Limits"`
}

// DatabaseConfig selects the store.
type DatabaseConfig struct {
	// Driver is "sqlite" or "postgres". When empty, a DSN that starts with
	// postgres:// or postgresql:// selects postgres, any other sqlite.
	Driver string `yaml:"Driver"`
	// DSN is the SQLite file path or the PostgreSQL connection string.
	DSN string `yaml:"DSN"`
}

// AuthConfig configures bearer token authentication.
type AuthConfig struct {
	// Tokens are the accepted bearer tokens. Empty turns authentication
	// off, which only Mode: dev allows.
	Tokens []string `yaml:"Tokens"`
}

// LogConfig configures the structured log.
type LogConfig struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"Level"`
	// Encoding is json or plain. Default: json.
	Encoding string `yaml:"Encoding"`
}

// Defaults of LimitsConfig; a zero value in the config means the default.
const (
	// DefaultMaxConns is the default of Limits.MaxConns.
	DefaultMaxConns = 1024
	// DefaultBodyTimeout is the default of Limits.BodyTimeout.
	DefaultBodyTimeout = 10 * time.Second
)

// LimitsConfig bounds what one caller can cost the server. Zero values
// mean the defaults, so a Config built in Go without Limits is bounded too.
type LimitsConfig struct {
	// MaxConns is how many connections Serve keeps open at a time; further
	// ones wait in the kernel's backlog until one closes. Default:
	// DefaultMaxConns.
	MaxConns int `yaml:"MaxConns"`
	// BodyTimeout is how long a request may take to send its body after
	// its headers; a slower body fails the call. Default:
	// DefaultBodyTimeout.
	BodyTimeout time.Duration `yaml:"BodyTimeout"`
	// MaxEventSkew is how far ahead of the clock an event time may be
	// before it is rejected as invalid, in the chat binary's process (see
	// rules.SetMaxFutureSkew; the chat binary applies it at start). Zero
	// means rules.DefaultMaxFutureSkew; programs that embed the server keep
	// their own setting.
	MaxEventSkew time.Duration `yaml:"MaxEventSkew"`
}

// maxConns returns MaxConns or its default.
func (l LimitsConfig) maxConns() int {
	if l.MaxConns > 0 {
		return l.MaxConns
	}
	return DefaultMaxConns
}

// bodyTimeout returns BodyTimeout or its default.
func (l LimitsConfig) bodyTimeout() time.Duration {
	if l.BodyTimeout > 0 {
		return l.BodyTimeout
	}
	return DefaultBodyTimeout
}

// Load reads and parses the config file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a YAML config, expands ${VAR} references, fills in
// defaults and validates the result. Every error names the key at fault.
func Parse(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, yamlError(err)
	}
	if err := cfg.expandEnv(); err != nil {
		return Config{}, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// sections maps the Go types of the config to their keys, to phrase the
// decoder's errors in the file's terms.
var sections = map[string]string{
	"chatserver.Config":         "the top level",
	"chatserver.DatabaseConfig": "Database",
	"chatserver.AuthConfig":     "Auth",
	"chatserver.LogConfig":      "Log",
	"chatserver.LimitsConfig":   "Limits",
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// yamlError rewrites "field X not found in type chatserver.LogConfig" as
// "unknown key X in Log".
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllStringFunc(m, func(s string) string {
			sub := unknownField.FindStringSubmatch(s)
			section, ok := sections[sub[2]]
			if !ok {
				return s
			}
			return fmt.Sprintf("unknown key %s in %s", sub[1], section)
		})
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envRef matches ${VAR} and ${VAR:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every string value. An
// unset or empty VAR without a default is an error.
func (c *Config) expandEnv() error {
	fields := []struct {
		key   string
		value *string
	}{
		{"Name", &c.Name},
		{"ListenOn", &c.ListenOn},
		{"Mode", &c.Mode},
		{"Database.Driver", &c.Database.Driver},
		{"Database.DSN", &c.Database.DSN},
		{"Log.Level", &c.Log.Level},
		{"Log.Encoding", &c.Log.Encoding},
	}
	for i := range c.Auth.Tokens {
		fields = append(fields, struct {
			key   string
			value *string
		}{fmt.Sprintf("Auth.Tokens[%d]", i), &c.Auth.Tokens[i]})
	}
	var errs []error
	for _, f := range fields {
		*f.value = envRef.ReplaceAllStringFunc(*f.value, func(ref string) string {
			sub := envRef.FindStringSubmatch(ref)
			name, def := sub[1], sub[2]
			if v := os.Getenv(name); v != "" {
				return v
			}
			if def != "" {
				return strings.TrimPrefix(def, ":-")
			}
			errs = append(errs, fmt.Errorf("%s: environment variable %s is not set", f.key, name))
			return ""
		})
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "chat.rpc"
	}
	if c.Mode == "" {
		c.Mode = ModeProd
	}
	if c.Database.Driver == "" {
		c.Database.Driver = store.DriverSQLite
		if isPostgresURL(c.Database.DSN) {
			c.Database.Driver = store.DriverPostgres
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Encoding == "" {
		c.Log.Encoding = "json"
	}
}

func isPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Validate reports every bad value, each naming its key. It does not
// reach the database; New does.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.Name == "" {
		bad("Name", "must not be empty")
	}
	if err := checkListenOn(c.ListenOn); err != nil {
		bad("ListenOn", "%v", err)
	}
	switch c.Mode {
	case ModeDev, ModeProd:
	default:
		bad("Mode", "%q is not %s or %s", c.Mode, ModeDev, ModeProd)
	}
	switch c.Database.Driver {
	case store.DriverSQLite:
		if isPostgresURL(c.Database.DSN) {
			bad("Database.DSN", "is a PostgreSQL URL but Database.Driver is %s", store.DriverSQLite)
		}
	case store.DriverPostgres:
	default:
		bad("Database.Driver", "%q is not %s or %s", c.Database.Driver, store.DriverSQLite, store.DriverPostgres)
	}
	if c.Database.DSN == "" {
		bad("Database.DSN", "must not be empty")
	}
	if len(c.Auth.Tokens) == 0 && c.Mode != ModeDev {
		bad("Auth.Tokens", "must hold at least one token unless Mode is %s", ModeDev)
	}
	for i, t := range c.Auth.Tokens {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, " \t\r\n") {
			bad(fmt.Sprintf("Auth.Tokens[%d]", i), "must be non-empty and hold no white space")
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad("Log.Level", "%v", err)
	}
	switch c.Log.Encoding {
	case "json", "plain":
	default:
		bad("Log.Encoding", "%q is not json or plain", c.Log.Encoding)
	}
	if c.Limits.MaxConns < 0 {
		bad("Limits.MaxConns", "must not be negative")
	}
	if c.Limits.BodyTimeout < 0 {
		bad("Limits.BodyTimeout", "must not be negative")
	}
	if c.Limits.MaxEventSkew < 0 {
		bad("Limits.MaxEventSkew", "must not be negative")
	}
	return errors.Join(errs...)
}

func checkListenOn(addr string) error {
	if addr == "" {
		return errors.New("must be host:port, for example 127.0.0.1:8080")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no port number from 0 to 65535", addr)
	}
	return nil
}
