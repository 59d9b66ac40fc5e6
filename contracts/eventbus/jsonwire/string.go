package jsonwire

import (
	"unicode/utf16"
	"unicode/utf8"
)

// readString reads the string that starts at d.pos with '"' and returns its
// content unescaped: a slice of the input when it has no escapes, else of
// d.scratch. It accepts what protojson accepts: no control characters, valid
// UTF-8, the JSON escapes, and \u escapes where a surrogate is always the
// high half of a pair followed at once by the low half.
func (d *Decoder) readString() ([]byte, error) {
	in := d.in
	start := d.pos + 1
	i := start
	for i < len(in) {
		switch c := in[i]; {
		case c == '"':
			d.pos = i + 1
			return in[start:i], nil
		case c == '\\':
			d.scratch = append(d.scratch[:0], in[start:i]...)
			return d.readEscaped(i)
		case c < ' ':
			return nil, d.errorAt(i, "invalid character %q in string", c)
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, d.errorAt(i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
	return nil, d.errorAt(len(in), "unexpected end of input in string")
}

// readEscaped goes on with readString from the escape at i, appending the
// content to d.scratch.
func (d *Decoder) readEscaped(i int) ([]byte, error) {
	in := d.in
	out := d.scratch
	for i < len(in) {
		switch c := in[i]; {
		case c == '"':
			d.pos = i + 1
			d.scratch = out
			return out, nil
		case c == '\\':
			if i+1 >= len(in) {
				return nil, d.errorAt(len(in), "unexpected end of input in string")
			}
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, n, err := d.unicodeEscape(i)
				if err != nil {
					return nil, err
				}
				out = utf8.AppendRune(out, r)
				i += n
				continue
			default:
				return nil, d.errorAt(i, "invalid escape %q in string", in[i:i+2])
			}
			i += 2
		case c < ' ':
			return nil, d.errorAt(i, "invalid character %q in string", c)
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, d.errorAt(i, "invalid UTF-8 in string")
			}
			out = append(out, in[i:i+n]...)
			i += n
		}
	}
	return nil, d.errorAt(len(in), "unexpected end of input in string")
}

// unicodeEscape reads the \uXXXX escape at i, and the low surrogate that
// must follow a high one, and returns the rune and the bytes read.
func (d *Decoder) unicodeEscape(i int) (rune, int, error) {
	in := d.in
	if i+6 > len(in) {
		return 0, 0, d.errorAt(len(in), "unexpected end of input in string")
	}
	r, ok := hex4(in[i+2 : i+6])
	if !ok {
		return 0, 0, d.errorAt(i, "invalid escape %q in string", in[i:i+6])
	}
	if !utf16.IsSurrogate(r) {
		return r, 6, nil
	}
	j := i + 6
	if j+6 > len(in) {
		return 0, 0, d.errorAt(len(in), "unexpected end of input in string")
	}
	low, ok := hex4(in[j+2 : j+6])
	if in[j] != '\\' || in[j+1] != 'u' || !ok {
		return 0, 0, d.errorAt(j, "invalid escape %q in string", in[j:j+6])
	}
	r = utf16.DecodeRune(r, low)
	if r == utf8.RuneError {
		return 0, 0, d.errorAt(i, "invalid surrogate pair %q in string", in[i:j+6])
	}
	return r, 12, nil
}

// hex4 decodes four hexadecimal digits.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
