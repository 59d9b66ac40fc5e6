package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
)

func rulesOf(field *protogen.Field) *optionsv1.FieldRules {
	r, _ := proto.GetExtension(field.Desc.Options(), optionsv1.E_Rules).(*optionsv1.FieldRules)
	return r
}

func hasRules(msg *protogen.Message) bool {
	for _, f := range msg.Fields {
		if rulesOf(f) != nil {
			return true
		}
	}
	return false
}

// validated reports whether msg gets a Validate method: when a field of its
// own has rules, or a message field (singular or repeated) holds a message
// that gets one. Messages of other files count too; their Validate method
// exists when this plugin generates their file as well, as buf generate
// does for every file of the module. The answers are memoized in g.
func (g *generator) validated(msg *protogen.Message) bool {
	name := msg.Desc.FullName()
	if v, ok := g.validates[name]; ok {
		return v
	}
	// A message that refers to itself counts as validated only through
	// rules found elsewhere, so assume false while looking.
	g.validates[name] = false
	v := hasRules(msg)
	for _, f := range msg.Fields {
		if !v && f.Message != nil && !f.Desc.IsMap() && g.validated(f.Message) {
			v = true
		}
	}
	g.validates[name] = v
	return v
}

// checkMapValues refuses a map field of msg whose values are messages with
// rules: Validate cannot check them, and leaving them unchecked in silence is
// what nested rules are meant to end.
func (g *generator) checkMapValues(file *protogen.File, msg *protogen.Message) error {
	for _, f := range msg.Fields {
		if !f.Desc.IsMap() {
			continue
		}
		if v := f.Message.Fields[1]; v.Message != nil && g.validated(v.Message) {
			return errorAt(file, pathOf(file, f.Desc), "%s: the values of this map are %s messages, which have rules; "+
				"Validate cannot check rules inside map values, use a repeated field",
				f.Desc.FullName(), v.Message.Desc.FullName())
		}
	}
	return nil
}

// generateValidate writes the Validate method of msg: the rules of each field
// in field order, and for a message field whose message has a Validate
// method, that method, so that the rules of nested messages hold too.
func (g *generator) generateValidate(gf *protogen.GeneratedFile, file *protogen.File, msg *protogen.Message) error {
	gf.P("// Validate reports the first field of x that breaks the rules declared in")
	gf.P("// the proto, nested messages included, as a *", rulesPackage.Ident("FieldError"), "; nil means x")
	gf.P("// is valid.")
	gf.P("func (x *", msg.GoIdent, ") Validate() error {")
	for _, f := range msg.Fields {
		if r := rulesOf(f); r != nil {
			check, err := fieldCheck(gf, file, f, r)
			if err != nil {
				return err
			}
			gf.P("if err := ", check, "; err != nil {")
			gf.P("return err")
			gf.P("}")
		}
		if f.Message == nil {
			continue
		}
		name := fmt.Sprintf("%q", f.Desc.Name())
		switch {
		case f.Desc.IsMap() || !g.validated(f.Message):
			// checkMapValues refuses maps of messages with rules.
		case f.Desc.IsList():
			gf.P("for i, v := range x.Get", f.GoName, "() {")
			gf.P("if err := v.Validate(); err != nil {")
			gf.P("return ", rulesPackage.Ident("NestedIndex"), "(", name, ", i, err)")
			gf.P("}")
			gf.P("}")
		default:
			gf.P("if v := x.Get", f.GoName, "(); v != nil {")
			gf.P("if err := v.Validate(); err != nil {")
			gf.P("return ", rulesPackage.Ident("Nested"), "(", name, ", err)")
			gf.P("}")
			gf.P("}")
		}
	}
	gf.P("return nil")
	gf.P("}")
	gf.P()
	return nil
}

// fieldCheck returns the Go expression that checks field f against r.
func fieldCheck(g *protogen.GeneratedFile, file *protogen.File, f *protogen.Field, r *optionsv1.FieldRules) (string, error) {
	name := string(f.Desc.Name())
	getter := "x.Get" + f.GoName + "()"
	fail := func(format string, args ...any) error {
		return errorAt(file, pathOf(file, f.Desc), "%s: %s", f.Desc.FullName(), fmt.Sprintf(format, args...))
	}
	// misapplied reports the first of the named rules that r sets, or nil;
	// the names are those of options.proto.
	misapplied := func(names ...string) error {
		for _, n := range names {
			if r.ProtoReflect().Has(r.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(n))) {
				return fail("rule %s does not apply to a %s field", n, typeName(f))
			}
		}
		return nil
	}
	if f.Desc.IsList() || f.Desc.IsMap() {
		return "", fail("rules on repeated and map fields are not supported")
	}
	switch kind := f.Desc.Kind(); {
	case kind == protoreflect.StringKind:
		if err := misapplied("max"); err != nil {
			return "", err
		}
		var parts []string
		if r.GetRequired() {
			parts = append(parts, "Required: true")
		}
		if r.GetMinLen() != 0 {
			parts = append(parts, fmt.Sprintf("MinLen: %d", r.GetMinLen()))
		}
		if r.GetMaxLen() != 0 {
			parts = append(parts, fmt.Sprintf("MaxLen: %d", r.GetMaxLen()))
		}
		if r.GetId() {
			parts = append(parts, "ID: true")
		}
		return fmt.Sprintf("%s(%q, %s, %s{%s})", g.QualifiedGoIdent(rulesPackage.Ident("CheckString")),
			name, getter, g.QualifiedGoIdent(rulesPackage.Ident("String")), strings.Join(parts, ", ")), nil
	case kind == protoreflect.MessageKind && f.Message.Desc.FullName() == "google.protobuf.Timestamp":
		if err := misapplied("min_len", "max_len", "id", "max"); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s(%q, %s, %t)", g.QualifiedGoIdent(rulesPackage.Ident("CheckTimestamp")), name, getter, r.GetRequired()), nil
	case kind == protoreflect.MessageKind:
		if err := misapplied("min_len", "max_len", "id", "max"); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s(%q, %s != nil, %t)", g.QualifiedGoIdent(rulesPackage.Ident("CheckMessage")), name, getter, r.GetRequired()), nil
	case isUnsigned(kind):
		if err := misapplied("min_len", "max_len", "id"); err != nil {
			return "", err
		}
		var parts []string
		if r.GetRequired() {
			parts = append(parts, "Required: true")
		}
		if r.GetMax() != 0 {
			parts = append(parts, fmt.Sprintf("Max: %d", r.GetMax()))
		}
		return fmt.Sprintf("%s(%q, uint64(%s), %s{%s})", g.QualifiedGoIdent(rulesPackage.Ident("CheckUint")),
			name, getter, g.QualifiedGoIdent(rulesPackage.Ident("Uint")), strings.Join(parts, ", ")), nil
	default:
		return "", fail("rules on %s fields are not supported", kind)
	}
}

// typeName names the type of f for error messages: the kind of a scalar, the
// full name of a message.
func typeName(f *protogen.Field) string {
	if f.Message != nil {
		return string(f.Message.Desc.FullName())
	}
	return f.Desc.Kind().String()
}

func isUnsigned(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}
