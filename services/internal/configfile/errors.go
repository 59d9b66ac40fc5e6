package configfile

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// KeyError is a configuration problem at one key.
type KeyError struct {
	// Key is the dotted path of the key, for example "Messaging.Retry".
	Key string
	// Line is the line of the file the key is on, or 0 when the value is a
	// default or derived.
	Line int
	// Env names the environment variable the value came from, or "" when
	// it was written in the file.
	Env string
	// Err says what is wrong.
	Err error
}

// Error returns "<Key> (line N): <Err>", naming the environment variable
// when the value came from one.
func (e *KeyError) Error() string {
	var where []string
	if e.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", e.Line))
	}
	if e.Env != "" {
		where = append(where, "from environment variable "+e.Env)
	}
	if len(where) == 0 {
		return fmt.Sprintf("%s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("%s (%s): %v", e.Key, strings.Join(where, ", "), e.Err)
}

// Unwrap returns Err.
func (e *KeyError) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration, in the order of the
// file.
type Errors []*KeyError

// Error lists the problems, one per line when there are several.
func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(es))
	for _, e := range es {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errorOf returns es as an error, sorted by line and then by key, or nil
// when es is empty.
func errorOf(es Errors) error {
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool {
		li, lj := es[i].Line, es[j].Line
		if li == 0 {
			li = 1 << 30
		}
		if lj == 0 {
			lj = 1 << 30
		}
		if li != lj {
			return li < lj
		}
		return es[i].Key < es[j].Key
	})
	return es
}

// Problems collects configuration problems for a Validate method, so that
// every problem is reported at once, each naming its key.
type Problems struct{ es Errors }

// Add records that the value at key is wrong.
func (p *Problems) Add(key, format string, args ...any) {
	p.es = append(p.es, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
}

// Err returns the problems as an Errors, or nil when there are none.
func (p *Problems) Err() error {
	if len(p.es) == 0 {
		return nil
	}
	return p.es
}

// flatten returns the KeyErrors in err, or nil when err holds other errors
// too.
func flatten(err error) Errors {
	var es Errors
	var walk func(error) bool
	walk = func(err error) bool {
		switch e := err.(type) {
		case *KeyError:
			es = append(es, e)
			return true
		case Errors:
			es = append(es, e...)
			return true
		case interface{ Unwrap() []error }:
			for _, c := range e.Unwrap() {
				if !walk(c) {
					return false
				}
			}
			return true
		}
		var ke *KeyError
		if errors.As(err, &ke) && ke == err {
			es = append(es, ke)
			return true
		}
		return false
	}
	if !walk(err) {
		return nil
	}
	return es
}
