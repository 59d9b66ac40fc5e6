package main

import (
	"fmt"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field numbers of descriptor.proto and options.proto that lead from a
// message or field declaration to the option values in it, for source
// locations.
const (
	messageOptionsNumber = 7     // DescriptorProto.options
	eventOptionNumber    = 51001 // (eventchat.options.v1.event)
	eventSubjectNumber   = 1     // EventOptions.subject
	eventStreamNumber    = 2     // EventOptions.stream
	eventPolicyNumber    = 3     // EventOptions.policy
)

// errorAt returns an error that starts with where it is in the proto source:
// "path:line:column: " for the declaration at path within file when the
// request carries source info (buf and protoc send it), the longest prefix of
// path that has a location otherwise, and just "path: " without any.
func errorAt(file *protogen.File, path protoreflect.SourcePath, format string, args ...any) error {
	where := file.Desc.Path()
	locs := file.Desc.SourceLocations()
	for n := len(path); n > 0; n-- {
		if loc := locs.ByPath(path[:n]); loc.Path != nil {
			where = fmt.Sprintf("%s:%d:%d", where, loc.StartLine+1, loc.StartColumn+1)
			break
		}
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

// pathOf returns the source path of the declaration of desc in its file.
func pathOf(file *protogen.File, desc protoreflect.Descriptor) protoreflect.SourcePath {
	return file.Desc.SourceLocations().ByDescriptor(desc).Path
}

// eventOptionPath returns the source path of the value at fields in the
// event option of msg: eventOptionPath(file, msg, 1) is its subject.
func eventOptionPath(file *protogen.File, msg *protogen.Message, fields ...int32) protoreflect.SourcePath {
	p := pathOf(file, msg.Desc)
	if p == nil {
		return nil
	}
	p = append(append(protoreflect.SourcePath(nil), p...), messageOptionsNumber, eventOptionNumber)
	return append(p, fields...)
}
