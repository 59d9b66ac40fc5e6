package configfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Origin says where a key's value came from.
type Origin struct {
	// Line is the line of the file the key is on; 0 for a default.
	Line int
	// Env lists the environment variables the value refers to, set or not.
	Env []string
	// FromEnv is the variable that supplied the value, or "" when the value
	// is the file's own text or a reference's default.
	FromEnv string
	// Secret reports whether the key holds a secret.
	Secret bool
}

// Sources records where each key of a decoded file came from.
type Sources struct {
	// File is the file's path, or "" when the data was not read from a
	// file.
	File string
	keys map[string]Origin
}

// Origin returns where key's value came from; the zero Origin for a default.
// It may be called on a nil Sources.
func (s *Sources) Origin(key string) Origin {
	if s == nil {
		return Origin{}
	}
	return s.keys[key]
}

// Hint says how to change the value of key, for example "change
// Embedded.Nats.Listen (consumer.yaml line 52) or set
// CHATCONSUMER_NATS_LISTEN".
func (s *Sources) Hint(key string) string {
	o := s.Origin(key)
	where := key
	switch {
	case s != nil && s.File != "" && o.Line > 0:
		where = fmt.Sprintf("%s (%s line %d)", key, s.File, o.Line)
	case s != nil && s.File != "":
		where = fmt.Sprintf("%s in %s", key, s.File)
	}
	if len(o.Env) > 0 {
		return fmt.Sprintf("set %s or change %s", strings.Join(o.Env, " or "), where)
	}
	return "change " + where
}

// Annotate adds the line and the environment variable of each key to the
// KeyErrors in err that lack them, such as those of a Validate method, and
// returns them as an Errors in the order of the file. Other errors are
// returned as they are.
func (s *Sources) Annotate(err error) error {
	if err == nil {
		return nil
	}
	es := flatten(err)
	if es == nil {
		return err
	}
	out := make(Errors, len(es))
	for i, e := range es {
		c := *e
		o := s.Origin(baseKey(c.Key))
		if c.Line == 0 {
			c.Line = o.Line
		}
		if c.Env == "" {
			c.Env = o.FromEnv
		}
		out[i] = &c
	}
	return errorOf(out)
}

// baseKey drops a qualifier such as " scheme" from a key.
func baseKey(key string) string {
	k, _, _ := strings.Cut(key, " ")
	return k
}

// Locate returns the configuration file to read: path when it is not empty,
// otherwise the first of candidates that exists, so that a binary started
// from the repository root, its service's folder or a container finds its
// file without -f.
func Locate(path string, candidates ...string) (string, error) {
	if path != "" {
		return path, nil
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config: %w", err)
		}
	}
	return "", fmt.Errorf("config: no -f FILE given and no config file at %s; pass -f FILE", strings.Join(candidates, ", "))
}
