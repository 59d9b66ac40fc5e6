package chatserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/activitychat/chat/services/chat/store"
	"github.com/activitychat/chat/services/internal/configfile"
	"github.com/activitychat/chat/services/internal/logging"
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
//	ListenOn: ${CHAT_LISTEN_ON:-127.0.0.1:8080}
//	Mode: dev
//	Database:
//	  Driver: sqlite            # or postgres
//	  DSN: ./data/chat.db       # or postgres://chat:${CHAT_DB_PASSWORD}@127.0.0.1:5432/chat
//	Auth:
//	  Tokens: ["${CHAT_TOKEN}"] # bearer tokens; empty only in Mode: dev
//	Log:
//	  Level: info               # debug, info, warn or error
//	  Encoding: text            # text (plain) or json; default text in dev, json in prod
//	Limits:
//	  MaxConns: 1024            # open connections at a time
//	  BodyTimeout: 10s          # to read a request's body
//	  MaxEventSkew: 24h         # how far ahead of the clock an event time may be
//
// The file is read by package configfile, as the consumer's is: any value
// may hold ${VAR} (an unset VAR is an error) or ${VAR:-default} (used when
// VAR is unset or empty), keys are case-sensitive, an unknown key is an error
// that lists the known keys, and every problem is reported at once with its
// key, its line and, for a value from the environment, the variable.
type Config struct {
	// Name is the service's name in logs. Default: chat.rpc.
	Name string `yaml:"Name"`
	// ListenOn is the host:port to listen on; 0.0.0.0:8080 in a container.
	// Default: 127.0.0.1:8080.
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

	origin *configfile.Sources // where each value came from; nil unless parsed
}

// DatabaseConfig selects the store.
type DatabaseConfig struct {
	// Driver is "sqlite" or "postgres". When empty, a DSN that starts with
	// postgres:// or postgresql:// selects postgres, any other sqlite.
	Driver string `yaml:"Driver"`
	// DSN is the SQLite file path or the PostgreSQL connection string.
	DSN string `yaml:"DSN" secret:"true"`
}

// AuthConfig configures bearer token authentication.
type AuthConfig struct {
	// Tokens are the accepted bearer tokens. Empty turns authentication
	// off, which only Mode: dev allows.
	Tokens []string `yaml:"Tokens" secret:"true"`
}

// LogConfig configures the structured log.
type LogConfig struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"Level"`
	// Encoding is "text" (or its older name "plain") or "json". Default:
	// text in Mode dev, json otherwise.
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

// Paths lists where the service looks for its configuration file when no
// path is given: its folder, the repository root and the container image.
var Paths = []string{"etc/chat.yaml", "services/chat/etc/chat.yaml", "/etc/chat/chat.yaml"}

// Load reads and parses the config file at path, or, when path is empty,
// the first file of Paths that exists; see Parse.
func Load(path string) (Config, error) {
	path, err := configfile.Locate(path, Paths...)
	if err != nil {
		return Config{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := parse(data, os.LookupEnv, path)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a YAML config, expands ${VAR} references from the process
// environment, fills in defaults and validates the result. Every problem is
// reported at once; each names its key and line.
func Parse(data []byte) (Config, error) {
	return parse(data, os.LookupEnv, "")
}

func parse(data []byte, lookup configfile.LookupFunc, file string) (Config, error) {
	var cfg Config
	src, err := configfile.Decode(data, &cfg, lookup)
	if err != nil {
		return Config{}, err
	}
	src.File = file
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, src.Annotate(err)
	}
	cfg.origin = src
	return cfg, nil
}

// Hint says how to change the value of key: the environment variable the
// file reads it from, and the file and line.
func (c Config) Hint(key string) string { return c.origin.Hint(key) }

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
	if c.ListenOn == "" {
		c.ListenOn = "127.0.0.1:8080"
	}
	if c.Log.Encoding == "" {
		c.Log.Encoding = logging.DefaultEncoding(c.Mode)
	}
}

func isPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Validate reports every bad value, each as a *configfile.KeyError naming
// its key. It does not reach the database; New does.
func (c Config) Validate() error {
	var p configfile.Problems
	bad := p.Add
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
	if _, err := logging.ParseLevel(c.Log.Level); err != nil {
		bad("Log.Level", "%v", err)
	}
	switch c.Log.Encoding {
	case "json", "text", "plain":
	default:
		bad("Log.Encoding", "%q is not text or json", c.Log.Encoding)
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
	return p.Err()
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
