package jsonwire

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// RecursionLimit is how deep messages and unknown values may nest, counted
// as protojson counts with its default limit.
const RecursionLimit = 10000

// ErrSyntax is matched by every error a Decoder returns.
var ErrSyntax = errors.New("jsonwire: invalid protojson")

// Decoder reads one JSON document. Its zero value is not usable; start one
// with NewDecoder. It is meant to live on the stack of a generated
// UnmarshalEventJSON method.
type Decoder struct {
	in  []byte
	pos int
	// depth is what remains of RecursionLimit in the current message, as
	// protojson's RecursionLimit after it entered that message.
	depth int
	// open is set between BeginMessage and the first NextField.
	open bool
	// namePos is where the last field name starts, for duplicate errors.
	namePos int
	// scratch holds unescaped strings.
	scratch []byte
	// arena holds the bytes of the strings String returned.
	arena []byte
}

// NewDecoder returns a Decoder that reads b.
func NewDecoder(b []byte) Decoder {
	return Decoder{in: b, depth: RecursionLimit}
}

// syntaxError is an error at an offset of the input.
type syntaxError struct {
	line, col int
	msg       string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("jsonwire: (line %d:%d): %s", e.line, e.col, e.msg)
}

func (e *syntaxError) Unwrap() error { return ErrSyntax }

// errorAt returns an error for offset pos of the input.
func (d *Decoder) errorAt(pos int, format string, args ...any) error {
	pos = min(pos, len(d.in))
	before := d.in[:pos]
	line := bytes.Count(before, []byte{'\n'}) + 1
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return &syntaxError{line: line, col: utf8.RuneCount(before) + 1, msg: fmt.Sprintf(format, args...)}
}

// unexpected returns an error for the token at d.pos, or for the end of the
// input.
func (d *Decoder) unexpected() error {
	if d.pos >= len(d.in) {
		return d.errorAt(d.pos, "unexpected end of input")
	}
	end := d.pos + 1
	for end < len(d.in) && end-d.pos < 32 && isNotDelim(d.in[end]) && isNotDelim(d.in[d.pos]) {
		end++
	}
	return d.errorAt(d.pos, "unexpected token %q", d.in[d.pos:end])
}

// ws skips white space.
func (d *Decoder) ws() {
	for d.pos < len(d.in) {
		switch d.in[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (d *Decoder) peek() byte {
	d.ws()
	if d.pos < len(d.in) {
		return d.in[d.pos]
	}
	return 0
}

// isNotDelim reports whether c may continue a number or literal: after
// one, protojson wants a byte outside [-+._a-zA-Z0-9] or the end.
func isNotDelim(c byte) bool {
	return c == '-' || c == '+' || c == '.' || c == '_' ||
		'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// literal reports whether the input at d.pos is lit followed by a delimiter,
// and consumes it if so.
func (d *Decoder) literal(lit string) bool {
	end := d.pos + len(lit)
	if end > len(d.in) || string(d.in[d.pos:end]) != lit {
		return false
	}
	if end < len(d.in) && isNotDelim(d.in[end]) {
		return false
	}
	d.pos = end
	return true
}

// BeginMessage starts a message: it counts one level against the recursion
// limit and reads the '{' that opens the message.
func (d *Decoder) BeginMessage() error {
	d.depth--
	if d.depth < 0 {
		return d.errorAt(d.pos, "exceeded max recursion depth")
	}
	if d.peek() != '{' {
		return d.unexpected()
	}
	d.pos++
	d.open = true
	return nil
}

// NextField reads up to the value of the next field of the current message
// and returns the field's name, unescaped. At the '}' that closes the
// message it returns ok false and leaves the message. The name is valid
// until the next call on d.
func (d *Decoder) NextField() (name []byte, ok bool, err error) {
	c := d.peek()
	if c == '}' {
		d.pos++
		d.open = false
		d.depth++
		return nil, false, nil
	}
	if !d.open {
		if c != ',' {
			return nil, false, d.unexpected()
		}
		d.pos++
		c = d.peek()
	}
	d.open = false
	if c != '"' {
		return nil, false, d.unexpected()
	}
	d.namePos = d.pos
	name, err = d.readString()
	if err != nil {
		return nil, false, err
	}
	if d.peek() != ':' {
		if d.pos >= len(d.in) {
			return nil, false, d.unexpected()
		}
		return nil, false, d.errorAt(d.pos, `missing ":" after field name`)
	}
	d.pos++
	d.ws()
	return name, true, nil
}

// Once marks the field bit in seen, or fails if the message had the field
// already: protojson rejects a field given twice, under either name.
func (d *Decoder) Once(seen, bit uint64) (uint64, error) {
	if seen&bit != 0 {
		return seen, d.errorAt(d.namePos, "duplicate field")
	}
	return seen | bit, nil
}

// Null consumes a null value and reports whether there was one. protojson
// leaves a field that is null unset.
func (d *Decoder) Null() bool {
	return d.pos < len(d.in) && d.in[d.pos] == 'n' && d.literal("null")
}

// End checks that nothing but white space follows the message.
func (d *Decoder) End() error {
	if d.peek() != 0 || d.pos < len(d.in) {
		return d.unexpected()
	}
	return nil
}

// Skip reads and discards a value, as protojson does for an unknown field:
// it must be valid JSON and nest no deeper than the recursion limit allows.
func (d *Decoder) Skip() error {
	return d.skip(0)
}

func (d *Decoder) skip(open int) error {
	switch c := d.peek(); c {
	case '{', '[':
		open++
		if open > d.depth {
			return d.errorAt(d.pos, "exceeded max recursion depth")
		}
		d.pos++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if d.peek() == end {
			d.pos++
			return nil
		}
		for {
			if c == '{' {
				if d.peek() != '"' {
					return d.unexpected()
				}
				if _, err := d.readString(); err != nil {
					return err
				}
				if d.peek() != ':' {
					return d.unexpected()
				}
				d.pos++
			}
			if err := d.skip(open); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case end:
				d.pos++
				return nil
			default:
				return d.unexpected()
			}
		}
	case '"':
		_, err := d.readString()
		return err
	case 't':
		if d.literal("true") {
			return nil
		}
	case 'f':
		if d.literal("false") {
			return nil
		}
	case 'n':
		if d.literal("null") {
			return nil
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if end, ok := scanNumber(d.in, d.pos); ok {
			d.pos = end
			return nil
		}
	}
	return d.unexpected()
}

// maxArena is the largest input whose string values share one allocation.
const maxArena = 1 << 10

// String reads a string value.
//
// The string values of a small input share one allocation: their bytes are
// appended to d.arena, which is never written again where a string points.
// It never grows, since the values, unescaped, fit in the input they come
// from; and it keeps at most maxArena bytes alive for a short string.
func (d *Decoder) String() (string, error) {
	if d.pos >= len(d.in) || d.in[d.pos] != '"' {
		return "", d.unexpected()
	}
	s, err := d.readString()
	if err != nil || len(s) == 0 {
		return "", err
	}
	if d.arena == nil && len(d.in) <= maxArena {
		d.arena = make([]byte, 0, len(d.in))
	}
	if len(d.arena)+len(s) > cap(d.arena) {
		return string(s), nil
	}
	off := len(d.arena)
	d.arena = append(d.arena, s...)
	return unsafe.String(&d.arena[off], len(s)), nil
}

// Bool reads true or false.
func (d *Decoder) Bool() (bool, error) {
	if d.pos < len(d.in) {
		switch d.in[d.pos] {
		case 't':
			if d.literal("true") {
				return true, nil
			}
		case 'f':
			if d.literal("false") {
				return false, nil
			}
		}
	}
	return false, d.unexpected()
}
