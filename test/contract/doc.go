// Package contract holds the contract tests of the event payloads: every
// sample under contracts/samples must decode into the generated Go types of
// gen/activity/v1 and pass their rules, or, for the invalid samples, be
// rejected as a permanent failure for the documented reason. It has no code
// of its own; see samples_test.go.
package contract
