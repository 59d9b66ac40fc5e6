package configfile

import (
	"fmt"
	"strings"
)

// LookupFunc looks up an environment variable, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// unsetError is an environment reference without a default whose variable
// is not set.
type unsetError struct{ name string }

func (e *unsetError) Error() string { return "environment variable " + e.name + " is not set" }

// Expand replaces ${VAR} and ${VAR:-default} in s with values from lookup,
// and "$$" with "$". Any other "$" is kept as it is, so a literal such as a
// password holding "$" needs no escaping unless it holds "${". An unset
// variable without a default is an error; ${VAR:-default} uses default when
// VAR is unset or empty. Expanded text is not expanded again. Expand returns
// the names of the variables s refers to, in order, also on error, and one
// error per unset variable.
func Expand(s string, lookup LookupFunc) (string, []string, []error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var (
		b     strings.Builder
		names []string
		errs  []error
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := closingBrace(s[i+2:])
			if end < 0 {
				return "", names, append(errs, fmt.Errorf("a ${ is not closed by }"))
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validEnvName(name) {
				errs = append(errs, fmt.Errorf("bad environment reference ${%s}: a name holds letters, digits and '_' and does not start with a digit", name))
				i += 2 + end
				continue
			}
			names = append(names, name)
			v, ok := lookup(name)
			switch {
			case hasDef && v == "":
				b.WriteString(def)
			case !ok:
				errs = append(errs, &unsetError{name: name})
			default:
				b.WriteString(v)
			}
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), names, errs
}

// closingBrace returns the index of the '}' that closes a "${" whose inside
// starts s, skipping balanced braces such as those of "{title}" in a default.
func closingBrace(s string) int {
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func validEnvName(name string) bool {
	if name == "" || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
