// Package configfile decodes the services' YAML configuration files, with
// one set of rules and one quality of error for every service.
//
// Keys are case-sensitive and named by the yaml tags of the Go struct the
// file is decoded into; an unknown key is an error that lists the known keys
// of its section. Every string, number, boolean and duration value may
// reference the environment as ${VAR} or ${VAR:-default}; "$$" stands for a
// literal "$". Expansion happens after YAML parsing, on each value, so an
// expanded value can never change the document's structure.
//
// Decode reports every problem it finds at once, each as a *KeyError naming
// the key's dotted path, the line and, when the value came from the
// environment, the variable. Values are never echoed in errors, so a secret
// put in the wrong place does not end up in a log. A field tagged
// `secret:"true"` is a secret: an unset variable there is reported without
// suggesting a default.
package configfile

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decode decodes the YAML document data into dst, a pointer to a struct that
// already holds the defaults, expanding environment references with lookup.
// It returns where each value came from, and an Errors holding every problem.
// An empty document leaves dst as it is.
func Decode(data []byte, dst any, lookup LookupFunc) (*Sources, error) {
	src := &Sources{keys: map[string]Origin{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return src, syntaxError(err)
	}
	if root.Kind == 0 {
		return src, nil
	}
	d := decoder{lookup: lookup, src: src}
	d.prepare(&root, reflect.TypeOf(dst).Elem(), "", false)
	if err := errorOf(d.errs); err != nil {
		return src, err
	}
	if err := root.Decode(dst); err != nil {
		return src, fmt.Errorf("decode: %w", err)
	}
	return src, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError phrases a YAML syntax error. yaml reports the line where it
// noticed the problem, which can be the line after the mistake.
func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = "near line " + m[1] + ": " + strings.TrimPrefix(msg, m[0])
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return fmt.Errorf("not valid YAML, %s (a value holding ${...}, '{', '}', '#' or ': ' inside {...} or [...] must be quoted; or write one key per line)", msg)
}

var durationType = reflect.TypeFor[time.Duration]()

// decoder walks a YAML tree along a Go type.
type decoder struct {
	lookup LookupFunc
	src    *Sources
	errs   Errors
}

func (d *decoder) fail(path string, line int, env string, err error) {
	d.errs = append(d.errs, &KeyError{Key: orRoot(path), Line: line, Env: env, Err: err})
}

// prepare walks n along the Go type t before it is decoded: it rejects
// unknown keys, expands environment references in scalars and decodes every
// scalar on its own, so that each problem names its key.
func (d *decoder) prepare(n *yaml.Node, t reflect.Type, path string, secret bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.prepare(c, t, path, secret)
		}
		return
	case yaml.AliasNode:
		d.prepare(n.Alias, t, path, secret)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value: the zero value
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "", errors.New("must be a mapping of keys"))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				d.fail(key, k.Line, "", fmt.Errorf("given twice, first at line %d", line))
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				d.fail(key, k.Line, "", unknownKey(k.Value, orRoot(path), keysOf(t)))
				continue
			}
			d.src.keys[key] = Origin{Line: k.Line}
			d.prepare(v, f.Type, key, secret || f.Tag.Get("secret") == "true")
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n.Line, "", fmt.Errorf("must be a list, such as [a, b]"))
			return
		}
		for i, c := range n.Content {
			d.prepare(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), secret)
		}
	default:
		d.scalar(n, t, path, secret)
	}
}

// scalar expands and checks one scalar value.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string, secret bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "", fmt.Errorf("must be a single value, %s", kindName(t)))
		return
	}
	origin := Origin{Line: n.Line, Secret: secret}
	if strings.Contains(n.Value, "$") {
		v, names, errs := Expand(n.Value, d.lookup)
		origin.Env = names
		for _, name := range names {
			if val, ok := d.lookup(name); ok && val != "" {
				origin.FromEnv = name
				break
			}
		}
		d.src.keys[path] = origin
		for _, err := range errs {
			var ue *unsetError
			if errors.As(err, &ue) {
				if secret {
					err = fmt.Errorf("environment variable %s is not set: set it in the environment (it holds a secret, so the file gives no default)", ue.name)
				} else {
					err = fmt.Errorf("environment variable %s is not set: set it, or write ${%s:-value} in the file for a default", ue.name, ue.name)
				}
			}
			d.fail(path, n.Line, "", err)
		}
		if len(errs) > 0 {
			return
		}
		n.Value = v
		if t.Kind() == reflect.String {
			n.Tag = "!!str"
		} else {
			// Let the expanded text resolve to a number, bool or duration
			// even when the reference was quoted.
			n.Tag, n.Style = "", 0
		}
	} else {
		d.src.keys[path] = origin
	}
	probe := reflect.New(t)
	if err := n.Decode(probe.Interface()); err != nil {
		// yaml's message quotes the start of the value; a secret in the
		// wrong key must not reach a log, so the message is our own.
		d.fail(path, n.Line, origin.FromEnv, fmt.Errorf("must be %s", kindName(t)))
	}
}

// unknownKey phrases an unknown key, suggesting a close known one.
func unknownKey(key, section string, known []string) error {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			best = k
			break
		}
		if dist := distance(strings.ToLower(k), strings.ToLower(key)); dist < bestDist && 2*dist < len(key) {
			best, bestDist = k, dist
		}
	}
	hint := ""
	if best != "" {
		hint = "did you mean " + best + "? "
	}
	return fmt.Errorf("unknown key (%sknown keys of %s: %s)", hint, section, strings.Join(known, ", "))
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// fieldByKey finds the field of t whose yaml tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key && name != "-" {
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
	case t.Kind() == reflect.Pointer:
		return kindName(t.Elem()) // an optional value
	case t == durationType:
		return "a duration such as 100ms or 1m30s"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		return "a number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return "a non-negative integer"
	case t.Kind() == reflect.String:
		return "a text value"
	}
	return "a " + t.Kind().String() + " value"
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
