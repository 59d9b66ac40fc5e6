package jsonwire

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrEncode is matched by every error the Append functions return.
var ErrEncode = errors.New("jsonwire: cannot encode")

// encodeError names the field that could not be encoded.
type encodeError struct {
	field string
	msg   string
}

func (e *encodeError) Error() string { return "jsonwire: field " + e.field + " " + e.msg }
func (e *encodeError) Unwrap() error { return ErrEncode }

// AppendName appends the name of a field, given quoted and with its colon,
// after a comma unless it is the first field of the object that starts at
// b[start].
func AppendName(b []byte, start int, quoted string) []byte {
	if len(b) > start+1 {
		b = append(b, ',')
	}
	return append(b, quoted...)
}

// AppendString appends s as a JSON string, escaped as protojson escapes it.
// It fails if s is not valid UTF-8; field names the field for the error.
func AppendString(b []byte, s, field string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, &encodeError{field: field, msg: "contains invalid UTF-8"}
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}

// AppendQuotedInt appends v as a JSON string, the protojson form of 64-bit
// integers.
func AppendQuotedInt(b []byte, v int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, v, 10)
	return append(b, '"')
}

// AppendQuotedUint appends v as a JSON string, the protojson form of 64-bit
// integers.
func AppendQuotedUint(b []byte, v uint64) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

// AppendEnum appends the name of enum value v, from names, or its number
// when it has no name.
func AppendEnum(b []byte, v int32, names map[int32]string) []byte {
	if name, ok := names[v]; ok {
		b = append(b, '"')
		b = append(b, name...)
		return append(b, '"')
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// AppendTimestamp appends t as protojson does: RFC 3339 in UTC with 0, 3, 6
// or 9 fractional digits. It fails for a t out of protojson's range; field
// names the field for the error.
func AppendTimestamp(b []byte, t *timestamppb.Timestamp, field string) ([]byte, error) {
	secs, nanos := t.GetSeconds(), t.GetNanos()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds {
		return b, &encodeError{field: field, msg: fmt.Sprintf("holds a google.protobuf.Timestamp with seconds out of range %d", secs)}
	}
	if nanos < 0 || nanos > 999999999 {
		return b, &encodeError{field: field, msg: fmt.Sprintf("holds a google.protobuf.Timestamp with nanos out of range %d", nanos)}
	}
	u := time.Unix(secs, 0).UTC()
	year, month, day := u.Date()
	hour, minute, sec := u.Clock()
	b = append(b, '"')
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	if nanos != 0 {
		digits, v := 9, int(nanos)
		switch {
		case v%1000000 == 0:
			digits, v = 3, v/1000000
		case v%1000 == 0:
			digits, v = 6, v/1000
		}
		b = append(b, '.')
		var buf [9]byte
		for i := digits - 1; i >= 0; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
		b = append(b, buf[:digits]...)
	}
	return append(b, 'Z', '"'), nil
}

func append2(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
