package eventbus

import (
	"mime"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Content types of event payloads.
const (
	// ContentTypeJSON is protojson with proto field names, the default.
	ContentTypeJSON = "application/json"
	// ContentTypeProto is binary protobuf.
	ContentTypeProto = "application/protobuf"
)

var (
	jsonMarshal   = protojson.MarshalOptions{UseProtoNames: true}
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// codecFor returns the content type a Content-Type header names, or
// ErrUnknownContentType. An absent header means JSON, so that a plain
// `nats pub` of an event's JSON works.
func codecFor(header string) (string, error) {
	switch header {
	case "", ContentTypeJSON:
		return ContentTypeJSON, nil
	case ContentTypeProto:
		return ContentTypeProto, nil
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return "", permanentf(ErrUnknownContentType, "%q", header)
	}
	switch mt {
	case ContentTypeJSON:
		return ContentTypeJSON, nil
	case ContentTypeProto, "application/x-protobuf", "application/vnd.google.protobuf":
		return ContentTypeProto, nil
	}
	return "", permanentf(ErrUnknownContentType, "%q", header)
}

// Decode decodes data, encoded as contentType names it, into msg. Its errors
// are permanent and match ErrUnknownContentType or ErrDecode.
func Decode(contentType string, data []byte, msg proto.Message) error {
	ct, err := codecFor(contentType)
	if err != nil {
		return err
	}
	if ct == ContentTypeProto {
		err = proto.Unmarshal(data, msg)
	} else {
		err = decodeJSON(data, msg)
	}
	if err != nil {
		return permanentf(ErrDecode, "%s as %s: %v", msg.ProtoReflect().Descriptor().FullName(), ct, err)
	}
	return nil
}

// Encode encodes msg as contentType: ContentTypeJSON or ContentTypeProto.
func Encode(contentType string, msg proto.Message) ([]byte, error) {
	ct, err := codecFor(contentType)
	if err != nil {
		return nil, err
	}
	if ct == ContentTypeProto {
		return proto.Marshal(msg)
	}
	return encodeJSON(msg)
}

// Validate runs msg's generated Validate method, if it has one. Its errors are
// permanent and match ErrInvalid and rules.ErrInvalid.
func Validate(msg proto.Message) error {
	v, ok := msg.(validator)
	if !ok {
		return nil
	}
	if err := v.Validate(); err != nil {
		return Permanent(&invalidError{err: err})
	}
	return nil
}

type invalidError struct{ err error }

func (e *invalidError) Error() string   { return "invalid event: " + e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }
