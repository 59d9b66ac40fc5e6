package jsonwire

import "math"

// scanNumber returns the end of the JSON number that starts at in[i], by
// protojson's rules: RFC 8259's grammar, except that an 'e' or 'E' followed
// by anything at all (an optional sign, then digits or none) counts as an
// exponent, and that the number must be followed by the end of the input or
// a byte that cannot continue it.
func scanNumber(in []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i >= len(in):
		return 0, false
	case in[i] == '0':
		i++
	case '1' <= in[i] && in[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i+1 < len(in) && in[i] == '.' && '0' <= in[i+1] && in[i+1] <= '9' {
		i = digits(i + 2)
	}
	if i+1 < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if in[i] == '+' || in[i] == '-' {
			i++
			if i >= len(in) {
				return 0, false
			}
		}
		i = digits(i)
	}
	if i < len(in) && isNotDelim(in[i]) {
		return 0, false
	}
	return i, true
}

// integer is a JSON number that protojson takes as an integer: its sign and
// magnitude, or overflow when the magnitude exceeds 64 bits.
type integer struct {
	neg      bool
	mag      uint64
	overflow bool
}

// toInteger converts the number num, as scanNumber accepted it, the way
// protojson does: the number must have an integer value once its fraction
// and exponent are applied, with at most 20 digits before any leading
// zeros of the fraction are dropped, and an exponent that fits 32 bits.
func toInteger(num []byte) (integer, bool) {
	var n integer
	i := 0
	if num[0] == '-' {
		n.neg = true
		i++
	}
	var intp, frac, exp []byte
	if num[i] == '0' {
		i++
	} else {
		j := i
		for i < len(num) && '0' <= num[i] && num[i] <= '9' {
			i++
		}
		intp = num[j:i]
	}
	if i+1 < len(num) && num[i] == '.' {
		j := i + 1
		for i = j; i < len(num) && '0' <= num[i] && num[i] <= '9'; i++ {
		}
		frac = num[j:i]
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
	}
	if i < len(num) && (num[i] == 'e' || num[i] == 'E') {
		exp = num[i+1:]
		if len(exp) == 1 && (exp[0] == '+' || exp[0] == '-') {
			// protojson rejects a sign without digits before it looks
			// at the value, even for a zero.
			return n, false
		}
	}
	if len(intp) == 0 && len(frac) == 0 {
		return integer{}, true
	}
	e, ok := parseExp(exp)
	if !ok {
		return n, false
	}
	var digits [2][]byte
	zeros := 0
	if e >= 0 {
		if len(frac) > e || len(intp)+e > 20 {
			return n, false
		}
		digits = [2][]byte{intp, frac}
		zeros = e - len(frac)
	} else {
		if len(frac) > 0 {
			return n, false
		}
		cut := len(intp) + e
		if cut < 0 {
			return n, false
		}
		for _, c := range intp[cut:] {
			if c != '0' {
				return n, false
			}
		}
		digits[0] = intp[:cut]
	}
	for _, part := range digits {
		for _, c := range part {
			n.add(uint64(c - '0'))
		}
	}
	for range zeros {
		n.add(0)
	}
	return n, true
}

// add appends the decimal digit d to n's magnitude.
func (n *integer) add(d uint64) {
	if n.mag > (math.MaxUint64-d)/10 {
		n.overflow = true
	}
	n.mag = n.mag*10 + d
}

// parseExp parses an exponent as strconv.ParseInt(exp, 10, 32) would; an
// empty exponent is 0.
func parseExp(exp []byte) (int, bool) {
	if len(exp) == 0 {
		return 0, true
	}
	neg := false
	switch exp[0] {
	case '+':
		exp = exp[1:]
	case '-':
		neg = true
		exp = exp[1:]
	}
	if len(exp) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range exp {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v > 1<<31 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}

// signed returns n as a signed integer of bits bits.
func (n integer) signed(bits uint) (int64, bool) {
	if n.overflow {
		return 0, false
	}
	limit := uint64(1) << (bits - 1)
	if n.neg {
		if n.mag > limit {
			return 0, false
		}
		return int64(-n.mag), true
	}
	if n.mag >= limit {
		return 0, false
	}
	return int64(n.mag), true
}

// unsigned returns n as an unsigned integer of bits bits.
func (n integer) unsigned(bits uint) (uint64, bool) {
	if n.overflow || n.neg && n.mag != 0 {
		return 0, false
	}
	if bits < 64 && n.mag >= uint64(1)<<bits {
		return 0, false
	}
	return n.mag, true
}

// readInteger reads an integer value: a number, or a string that holds
// exactly one number, as protojson accepts for integer fields.
func (d *Decoder) readInteger() (integer, int, bool) {
	at := d.pos
	if at >= len(d.in) {
		return integer{}, at, false
	}
	var num []byte
	switch c := d.in[at]; {
	case c == '"':
		s, err := d.readString()
		if err != nil {
			return integer{}, at, false
		}
		end, ok := scanNumber(s, 0)
		if !ok || end != len(s) {
			return integer{}, at, false
		}
		num = s
	case c == '-' || '0' <= c && c <= '9':
		end, ok := scanNumber(d.in, at)
		if !ok {
			return integer{}, at, false
		}
		num = d.in[at:end]
		d.pos = end
	default:
		return integer{}, at, false
	}
	n, ok := toInteger(num)
	return n, at, ok
}

// Int32 reads an int32, sint32 or sfixed32 value.
func (d *Decoder) Int32() (int32, error) {
	n, at, ok := d.readInteger()
	if ok {
		if v, ok := n.signed(32); ok {
			return int32(v), nil
		}
	}
	return 0, d.invalid(at, "int32")
}

// Int64 reads an int64, sint64 or sfixed64 value.
func (d *Decoder) Int64() (int64, error) {
	n, at, ok := d.readInteger()
	if ok {
		if v, ok := n.signed(64); ok {
			return v, nil
		}
	}
	return 0, d.invalid(at, "int64")
}

// Uint32 reads a uint32 or fixed32 value.
func (d *Decoder) Uint32() (uint32, error) {
	n, at, ok := d.readInteger()
	if ok {
		if v, ok := n.unsigned(32); ok {
			return uint32(v), nil
		}
	}
	return 0, d.invalid(at, "uint32")
}

// Uint64 reads a uint64 or fixed64 value.
func (d *Decoder) Uint64() (uint64, error) {
	n, at, ok := d.readInteger()
	if ok {
		if v, ok := n.unsigned(64); ok {
			return v, nil
		}
	}
	return 0, d.invalid(at, "uint64")
}

// Enum reads an enum value: the name of one of its values, looked up in
// values, or an int32 number. A name that values lacks leaves the field
// unset, as protojson does when it discards unknown fields.
func Enum[E ~int32](d *Decoder, values map[string]int32) (E, error) {
	at := d.pos
	if at < len(d.in) && d.in[at] == '"' {
		s, err := d.readString()
		if err != nil {
			return 0, err
		}
		return E(values[string(s)]), nil
	}
	if at < len(d.in) && (d.in[at] == '-' || '0' <= d.in[at] && d.in[at] <= '9') {
		if end, ok := scanNumber(d.in, at); ok {
			d.pos = end
			if n, ok := toInteger(d.in[at:end]); ok {
				if v, ok := n.signed(32); ok {
					return E(v), nil
				}
			}
		}
	}
	return 0, d.invalid(at, "enum")
}

// invalid returns the error for a value at offset at that is not of kind.
func (d *Decoder) invalid(at int, kind string) error {
	d.pos = at
	if at < len(d.in) && (d.in[at] == '"' || d.in[at] == '{' || d.in[at] == '[') {
		return d.errorAt(at, "invalid value for %s field", kind)
	}
	return d.unexpected()
}
