package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// termSafe returns s as it may be shown on a terminal: text from events,
// dead letters and the server is untrusted, and a control character such as
// ESC or BEL, a C1 control, a bidirectional override or an invalid UTF-8
// byte could make the terminal run a command sequence (set the title, clear
// the screen, reorder the text). Such characters are shown escaped in Go
// syntax (\x1b, \u009b, \u202e, \xff); a backslash is shown as it is, since
// the terminal does not interpret it. Newlines and tabs are escaped too, so
// that one value stays on one line. Letters, marks, numbers, punctuation, symbols
// and spaces of every script pass unchanged.
func termSafe(s string) string {
	if isTermSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case safeRune(r):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}

func isTermSafe(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || !safeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// safeRune reports whether r is shown as it is: graphic characters and
// spaces, but no control or format character (Cc, Cf, which hold the
// bidirectional overrides), line or paragraph separator.
func safeRune(r rune) bool {
	return unicode.IsGraphic(r) && !unicode.Is(unicode.Cf, r)
}
