package jsonwire

import (
	"bytes"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// The range protojson allows a google.protobuf.Timestamp:
// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// Timestamp reads a google.protobuf.Timestamp value: a string that
// time.Parse reads as time.RFC3339Nano, within protojson's range, with at
// most nine fractional digits after a '.'.
func (d *Decoder) Timestamp() (*timestamppb.Timestamp, error) {
	// protojson enters the Timestamp as a message.
	if d.depth-1 < 0 {
		return nil, d.errorAt(d.pos, "exceeded max recursion depth")
	}
	at := d.pos
	if at >= len(d.in) || d.in[at] != '"' {
		return nil, d.unexpected()
	}
	s, err := d.readString()
	if err != nil {
		return nil, err
	}
	secs, nanos, ok := parseTimestamp(s)
	if !ok {
		return nil, d.errorAt(at, "invalid google.protobuf.Timestamp value %s", d.in[at:d.pos])
	}
	return &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}, nil
}

// parseTimestamp returns the seconds and nanoseconds of s, or false where
// protojson rejects s. The common form, YYYY-MM-DDTHH:MM:SS[.F]Z or with a
// ±HH:MM offset and every field in its usual range, is read here; anything
// else goes to time.Parse, whose fallback parser is more lenient (a one
// digit hour, a ',' before the fraction, an offset of 24:00) and which
// protojson calls.
func parseTimestamp(s []byte) (int64, int32, bool) {
	if secs, nanos, ok, sure := parseCommonTimestamp(s); sure {
		return secs, nanos, ok
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return 0, 0, false
	}
	secs := t.Unix()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds {
		return 0, 0, false
	}
	// protojson's own limit: no more than nine digits after a '.'.
	i := bytes.LastIndexByte(s, '.')
	j := bytes.LastIndexAny(s, "Z-+")
	if i >= 0 && j >= i && j-i > len(".999999999") {
		return 0, 0, false
	}
	return secs, int32(t.Nanosecond()), true
}

// parseCommonTimestamp reads s when it has the form that time.Parse reads
// on its fast path, and then reports sure. For any other s it reports not
// sure, and time.Parse decides.
func parseCommonTimestamp(s []byte) (secs int64, nanos int32, ok, sure bool) {
	if len(s) < len("2006-01-02T15:04:05Z") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false, false
	}
	num := func(b []byte, lo, hi int) (int, bool) {
		v := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, lo <= v && v <= hi
	}
	year, ok1 := num(s[0:4], 0, 9999)
	month, ok2 := num(s[5:7], 1, 12)
	day, ok3 := num(s[8:10], 1, 31)
	hour, ok4 := num(s[11:13], 0, 23)
	minute, ok5 := num(s[14:16], 0, 59)
	sec, ok6 := num(s[17:19], 0, 59)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || day > daysIn(month, year) {
		return 0, 0, false, false
	}
	rest := s[19:]
	digits := 0
	if len(rest) >= 2 && rest[0] == '.' && '0' <= rest[1] && rest[1] <= '9' {
		digits = 1
		for digits+1 < len(rest) && '0' <= rest[digits+1] && rest[digits+1] <= '9' {
			digits++
		}
		for k := range 9 {
			nanos *= 10
			if k < digits {
				nanos += int32(rest[1+k] - '0')
			}
		}
		rest = rest[1+digits:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(rest[1:3], 0, 23)
		om, ok2 := num(rest[4:6], 0, 59)
		if !ok1 || !ok2 {
			return 0, 0, false, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, 0, false, false
	}
	if digits > 9 {
		// time.Parse takes the first nine digits; protojson refuses more.
		return 0, 0, false, true
	}
	secs = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - int64(offset)
	if secs < minTimestampSeconds || secs > maxTimestampSeconds {
		return 0, 0, false, true
	}
	return secs, nanos, true, true
}

// daysIn returns the number of days in month of year, in the proleptic
// Gregorian calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
