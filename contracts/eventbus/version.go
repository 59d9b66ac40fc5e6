package eventbus

// Version is the semantic version of the eventbus runtime.
const Version = "0.2.0"

// These constants are used in compile-time handshakes with the code that
// protoc-gen-go-events generates. A generated file refers to the constant of
// the runtime version it was generated for, for example
//
//	const _ = eventbus.IsAtLeastVersion0_2_0
//
// so that code from a newer plugin fails to compile, with this constant's
// name in the error, against an eventbus that is too old for it, instead of
// failing in some less obvious way. A new constant is added whenever the
// generated code starts to need something new of the runtime; the old ones
// are never removed.
const (
	// IsAtLeastVersion0_2_0 is referenced by code generated for the
	// eventbus 0.2 API: handler interfaces, registries and policies.
	IsAtLeastVersion0_2_0 = true
)
