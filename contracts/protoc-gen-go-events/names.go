package main

import (
	"path"
	"regexp"
	"strings"
	"unicode"

	"google.golang.org/protobuf/compiler/protogen"
)

// versionElement matches the version element of a package name, as in
// activity.v1 or billing.v2beta1.
var versionElement = regexp.MustCompile(`^v\d+([a-z]+\d*)?$`)

// contractName names the per-file contract API: the handler interface
// <Name>Handler, its Unimplemented<Name>Handler, the function Register<Name>
// and the registry variable <Name>.
//
// The rule: take the last element of the proto package that is not a
// version ("activity" of activity.v1) and the file's base name ("events" of
// activity/v1/events.proto), both in CamelCase, and join them, dropping the
// package element when the file name already starts with it; then append
// "Events" unless the name already ends with it. So activity/v1/events.proto
// gives ActivityEvents, eventchat/testing/v1/testing.proto gives
// TestingEvents and billing/v1/invoice.proto would give
// BillingInvoiceEvents.
func contractName(file *protogen.File) string {
	var pkg string
	elems := strings.Split(string(file.Desc.Package()), ".")
	for i := len(elems) - 1; i >= 0; i-- {
		if elems[i] != "" && !versionElement.MatchString(elems[i]) {
			pkg = camelCase(elems[i])
			break
		}
	}
	base := camelCase(strings.TrimSuffix(path.Base(file.Desc.Path()), ".proto"))
	name := base
	if !strings.HasPrefix(base, pkg) {
		name = pkg + base
	}
	if !strings.HasSuffix(name, "Events") {
		name += "Events"
	}
	return name
}

// camelCase turns snake_case, kebab-case and dotted names into CamelCase.
func camelCase(s string) string {
	var b strings.Builder
	upper := true
	for _, r := range s {
		switch {
		case r == '_' || r == '-' || r == '.':
			upper = true
		case upper:
			b.WriteRune(unicode.ToUpper(r))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// goNames returns the Go identifiers that protoc-gen-go declares for the
// messages and enums of file, and that this plugin declares per event, to
// check the contract API's names against.
func goNames(file *protogen.File) map[string]string {
	names := make(map[string]string)
	var addMsgs func([]*protogen.Message)
	addEnums := func(enums []*protogen.Enum) {
		for _, e := range enums {
			names[e.GoIdent.GoName] = "enum " + string(e.Desc.FullName())
			for _, v := range e.Values {
				names[v.GoIdent.GoName] = "enum value " + string(v.Desc.FullName())
			}
		}
	}
	addMsgs = func(msgs []*protogen.Message) {
		for _, m := range msgs {
			full := string(m.Desc.FullName())
			names[m.GoIdent.GoName] = "message " + full
			for _, suffix := range []string{"Subject", "Stream", "Event", "Handler", "Policy"} {
				names[m.GoIdent.GoName+suffix] = "an identifier generated for message " + full
			}
			addMsgs(m.Messages)
			addEnums(m.Enums)
		}
	}
	addMsgs(file.Messages)
	addEnums(file.Enums)
	return names
}
