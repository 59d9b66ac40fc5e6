package rules

// IsAtLeastVersion0_2_0 is referenced by the Validate methods that
// protoc-gen-go-events v0.2 generates, as
//
//	const _ = rules.IsAtLeastVersion0_2_0
//
// so that generated code that needs Nested and NestedIndex fails to compile,
// with this name in the error, against an older rules package. A new
// constant is added whenever generated code starts to need something new of
// this package; old ones are never removed.
const IsAtLeastVersion0_2_0 = true
