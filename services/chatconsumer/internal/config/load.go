package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/activitychat/chat/services/internal/configfile"
)

// Paths lists where the consumer looks for its configuration file when -f
// is not given: beside the binary's working directory, from the repository
// root, and where the container image puts it.
var Paths = []string{"etc/consumer.yaml", "services/chatconsumer/etc/consumer.yaml", "/etc/chatconsumer/consumer.yaml"}

// LookupFunc looks up an environment variable, like os.LookupEnv.
type LookupFunc = configfile.LookupFunc

// KeyError is a configuration problem at one key; see configfile.KeyError.
type KeyError = configfile.KeyError

// Load reads the configuration file at path, expands environment references
// from the process environment, applies defaults and validates the result.
// An empty path looks the file up in Paths.
func Load(path string) (*Config, error) {
	path, err := configfile.Locate(path, Paths...)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parse(data, os.LookupEnv, path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse parses a YAML configuration, expanding environment references with
// lookup, applies defaults and validates the result. Every problem is
// reported at once, each naming its key as a dotted path (for example
// "Messaging.Retry.Multiplier"), its line and, when the value came from the
// environment, the variable.
func Parse(data []byte, lookup LookupFunc) (*Config, error) {
	return parse(data, lookup, "")
}

func parse(data []byte, lookup LookupFunc, file string) (*Config, error) {
	cfg := Default()
	src, err := configfile.Decode(data, &cfg, lookup)
	if err != nil {
		return nil, err
	}
	src.File = file
	cfg.src = src
	cfg.derive()
	if err := cfg.Validate(); err != nil {
		return nil, src.Annotate(err)
	}
	return &cfg, nil
}

// File returns the path of the file the configuration was read from, or ""
// when it was parsed from memory.
func (c *Config) File() string {
	if c.src == nil {
		return ""
	}
	return c.src.File
}

// Hint says how to change the value of key: the environment variable the
// file reads it from, and the file and line. Startup errors such as a busy
// port use it to tell the user what to change.
func (c *Config) Hint(key string) string { return c.src.Hint(key) }

// derive fills defaults that depend on other values.
func (c *Config) derive() {
	if c.Embedded.Nats.StoreDir == "" {
		c.Embedded.Nats.StoreDir = filepath.Join(c.Embedded.DataDir, "nats")
	}
	if c.Embedded.Chat.Database.DSN == "" && c.Embedded.Chat.Database.Driver == "sqlite" {
		c.Embedded.Chat.Database.DSN = filepath.Join(c.Embedded.DataDir, "chat.db")
	}
}
