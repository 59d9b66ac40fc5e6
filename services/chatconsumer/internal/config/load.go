package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path, expands environment references
// from the process environment, applies defaults and validates the result.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse parses a YAML configuration, expanding environment references with
// lookup, applies defaults and validates the result. Errors name the key at
// fault as a dotted path, for example "Messaging.Retry.Multiplier".
func Parse(data []byte, lookup LookupFunc) (*Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if root.Kind != 0 {
		if err := prepare(&root, reflect.TypeFor[Config](), "", lookup); err != nil {
			return nil, err
		}
		if err := root.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
	}
	cfg.derive()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// derive fills defaults that depend on other values.
func (c *Config) derive() {
	if c.Embedded.Nats.StoreDir == "" {
		c.Embedded.Nats.StoreDir = filepath.Join(c.Embedded.DataDir, "nats")
	}
	if c.Embedded.Chat.Database.DSN == "" && c.Embedded.Chat.Database.Driver == "sqlite" {
		c.Embedded.Chat.Database.DSN = filepath.Join(c.Embedded.DataDir, "chat.db")
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// prepare walks the YAML tree along the Go type t before it is decoded: it
// rejects unknown keys, expands environment references in scalars and
// decodes every scalar on its own, so that each error names its key.
func prepare(n *yaml.Node, t reflect.Type, path string, lookup LookupFunc) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := prepare(c, t, path, lookup); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		return prepare(n.Alias, t, path, lookup)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // an empty value: the zero value
	}
	if t.Kind() == reflect.Struct && t != durationType {
		if n.Kind != yaml.MappingNode {
			return keyError(path, n, errors.New("must be a mapping of keys"))
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if line, dup := seen[k.Value]; dup {
				return keyError(join(path, k.Value), k, fmt.Errorf("given twice, first at line %d", line))
			}
			seen[k.Value] = k.Line
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				return keyError(join(path, k.Value), k, fmt.Errorf("unknown key (known keys of %s: %s)", orRoot(path), strings.Join(keysOf(t), ", ")))
			}
			if err := prepare(v, f.Type, join(path, k.Value), lookup); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return keyError(path, n, fmt.Errorf("must be a single %s value", kindName(t)))
	}
	if strings.Contains(n.Value, "$") {
		v, err := expand(n.Value, lookup)
		if err != nil {
			return keyError(path, n, err)
		}
		n.Value = v
		if t.Kind() == reflect.String {
			n.Tag = "!!str"
		} else {
			// Let the expanded text resolve to a number, bool or duration
			// even when the reference was quoted.
			n.Tag, n.Style = "", 0
		}
	}
	probe := reflect.New(t)
	if err := n.Decode(probe.Interface()); err != nil {
		return keyError(path, n, errors.New(stripLine(err)))
	}
	return nil
}

// fieldByKey finds the field of t whose yaml tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keysOf lists the yaml keys of t, sorted.
func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration (such as 100ms or 1m30s)"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "integer"
	}
	return t.Kind().String()
}

var linePrefix = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\s*)?(line \d+: )?`)

// stripLine removes yaml's prefixes from a decode error; keyError adds the
// line itself.
func stripLine(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return linePrefix.ReplaceAllString(te.Errors[0], "")
	}
	return linePrefix.ReplaceAllString(err.Error(), "")
}

// KeyError is a configuration error at one key.
type KeyError struct {
	// Key is the dotted path of the key, for example "Messaging.Retry".
	Key string
	// Line is the line of the file the key is on, or 0 when the value is a
	// default or derived.
	Line int
	// Err says what is wrong.
	Err error
}

// Error returns "<Key>: <Err>", with the line when known.
func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %v (line %d)", e.Key, e.Err, e.Line)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

// Unwrap returns Err.
func (e *KeyError) Unwrap() error { return e.Err }

func keyError(path string, n *yaml.Node, err error) error {
	return &KeyError{Key: orRoot(path), Line: n.Line, Err: err}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}
