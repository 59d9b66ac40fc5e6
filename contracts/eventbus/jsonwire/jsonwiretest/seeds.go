package jsonwiretest

import "strings"

// Seeds returns inputs that reach the corners of protojson's grammar for
// messages whose fields are named as fields: a template with each value of
// values in each place of the field name, and a set of documents that break
// the grammar around them. fields names a string field, a timestamp field
// and an integer field of the message (empty ones are left out).
func Seeds(stringField, timestampField, intField string) [][]byte {
	var docs []string
	add := func(field, value string) {
		if field != "" {
			docs = append(docs, `{"`+field+`":`+value+`}`)
		}
	}
	for _, v := range []string{
		`"a"`, `""`, `null`, `"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"`, `"\ud800"`, `"\udc00\ud800"`,
		`"\ud83d\u0041"`, `"\u12G4"`, `"\x"`, "\"\x01\"", "\"\xff\"", "\"\xed\xa0\x80\"", `"é"`,
		`"a` + strings.Repeat("b", 70) + `"`, `1`, `true`, `{}`, `[]`, `nul`, `nullx`, `"\u0000"`,
		`"\uD83D\uDE00"`, `"\ud83d\\ude00"`, "\"\xef\xbf\xbd\"",
	} {
		add(stringField, v)
	}
	for _, v := range []string{
		`"2024-01-01T10:00:00Z"`, `"2024-01-01T10:00:00.123456789Z"`, `"2024-01-01T10:00:00.1234567891Z"`,
		`"2024-01-01T10:00:00+08:00"`, `"2024-01-01T10:00:00-23:59"`, `"2024-01-01T10:00:00+24:00"`,
		`"2024-01-01T10:00:00+23:60"`, `"2024-01-01T1:00:00Z"`, `"2024-01-01T10:00:00,5Z"`,
		`"2024-01-01T10:00:00,1234567891Z"`, `"2024-02-29T10:00:00Z"`, `"2023-02-29T10:00:00Z"`,
		`"0001-01-01T00:00:00Z"`, `"0001-01-01T00:00:00+01:00"`, `"0000-12-31T23:59:59Z"`,
		`"9999-12-31T23:59:59.999999999Z"`, `"9999-12-31T23:59:59-01:00"`, `"2024-01-01t10:00:00z"`,
		`"2024-01-01T10:00:00"`, `"2024-01-01 10:00:00Z"`, `"2024-01-01T10:00:00.Z"`, `"2024-13-01T10:00:00Z"`,
		`"2024-01-01T24:00:00Z"`, `"2024-01-01T10:60:00Z"`, `"2024-01-01T10:00:60Z"`, `"\u0032024-01-01T10:00:00Z"`,
		`"2024-01-01T10:00:00.5+01:00"`, `"2024-01-01T10:00:00.000Z"`, `1704103200`, `"1704103200"`,
	} {
		add(timestampField, v)
	}
	for _, v := range []string{
		`0`, `-0`, `1`, `-1`, `100`, `1e2`, `1E+2`, `1.0`, `1.5`, `1e`, `1e+`, `0e+`, `0e`, `1.5e`, `-`, `01`,
		`1.`, `.5`, `0.5e1`, `0.0000000001e20`, `0.0000000001e21`, `100e-2`, `10e-2`, `4294967295`,
		`4294967296`, `-2147483648`, `-2147483649`, `9223372036854775807`, `9223372036854775808`,
		`-9223372036854775808`, `18446744073709551615`, `18446744073709551616`, `1e2147483648`, `0e99999999999`,
		`"1"`, `"-1"`, `" 1"`, `"1 "`, `"1e2"`, `"\u0031"`, `"0x10"`, `"1e"`, `"+1"`, `"1,"`, `"\u00a01"`,
		`1x`, `1-`, `true`, `"COLOR_RED"`, `"nope"`, `{}`, `1}`, `1e5}`,
	} {
		add(intField, v)
	}
	docs = append(docs,
		``, ` `, `{`, `}`, `{}`, ` {} `, "\t{\r\n}\n", `{} {}`, `{}x`, `[]`, `null`, `{,}`, `{"a":1,}`,
		`{"a" 1}`, `{"a":1 "b":2}`, `{"a" : 1 , "b" : [1, {"c": null}, "d", true, false, -1.5e-3]}`,
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":{"b":}}`, `{"a":tru}`, `{"a":truex}`, `{"a":1e}`, `{"a":"\q"}`,
		`{"a":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`, `{"a":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`,
		`{"a":1,"a":2}`, "\ufeff{}", `{"\u0061":1}`, `{"[ext]":1}`, `{"@type":"x"}`,
	)
	if stringField != "" {
		docs = append(docs,
			`{"`+stringField+`":"a","`+stringField+`":"b"}`,
			`{"`+stringField+`":null,"`+stringField+`":"b"}`,
			`{"`+stringField+`":"a"} `,
			`{"`+stringField+`":"a"`,
			`{"`+stringField+`"`,
		)
	}
	out := make([][]byte, len(docs))
	for i, d := range docs {
		out[i] = []byte(d)
	}
	return out
}
