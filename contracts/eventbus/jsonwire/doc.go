// Package jsonwire reads and writes the protojson form of protobuf messages
// for the JSON codecs that protoc-gen-go-events generates. Generated code
// calls it field by field: the package scans tokens, the generated code knows
// the fields, and neither uses reflection.
//
// Decoding follows protojson.Unmarshal with DiscardUnknown set, which is how
// the eventbus runtime reads events, to the byte: the same JSON grammar
// (including protojson's number and literal delimiter rules), the same string
// escapes and UTF-8 checks, field names in either proto or JSON form, null
// for an unset field, duplicate fields rejected, unknown fields skipped but
// still checked for syntax and depth, integers as numbers or strings, and
// RFC 3339 timestamps as time.Parse reads them plus protojson's range and
// precision checks. Encoding follows protojson.Marshal with UseProtoNames,
// without the random spaces that protojson adds to keep callers from
// depending on its exact bytes.
//
// The error messages are this package's own. They give the line and column
// where the input breaks, but not always the same text as protojson.
package jsonwire
