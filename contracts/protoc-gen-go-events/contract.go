package main

import (
	"strconv"

	"google.golang.org/protobuf/compiler/protogen"
)

// generateContract writes the per-file contract API: the handler interface
// with one method per event, its Unimplemented type, the Register function
// and the registry of the file's events. name is contractName(file).
func generateContract(g *protogen.GeneratedFile, file *protogen.File, name string, events []*event) {
	ctx := g.QualifiedGoIdent(contextPackage.Ident("Context"))
	meta := g.QualifiedGoIdent(eventbusPackage.Ident("Meta"))
	source := file.Desc.Path()
	handler := name + "Handler"
	unimplemented := "Unimplemented" + handler

	comment(g, handler+" handles every event of "+source+", one method per event. Register"+name+
		" subscribes all of them, so a new event in the proto does not compile until its handler has the method."+
		" Returning nil acknowledges the event; see the eventbus package for how errors are retried or dead-lettered.")
	g.P("type ", handler, " interface {")
	for _, ev := range events {
		n := ev.msg.GoIdent.GoName
		comment(g, n+" handles one "+n+" event, published to "+n+"Subject.")
		g.P(n, "(ctx ", ctx, ", event *", ev.msg.GoIdent, ", meta ", meta, ") error")
	}
	g.P("}")
	g.P()
	comment(g, unimplemented+" implements "+handler+" by refusing every event with an error that matches"+
		" eventbus.ErrUnimplemented and eventbus.ErrPermanent, so such events are dead-lettered with a reason that"+
		" names the missing method. Embedding it gives up the compile-time check that every event has a handler;"+
		" do that only to dead-letter, on purpose, the events a service does not handle.")
	g.P("type ", unimplemented, " struct{}")
	g.P()
	for _, ev := range events {
		n := ev.msg.GoIdent.GoName
		comment(g, n+" dead-letters the event: it returns eventbus.Unimplemented.")
		g.P("func (", unimplemented, ") ", n, "(", ctx, ", *", ev.msg.GoIdent, ", ", meta, ") error {")
		g.P("return ", eventbusPackage.Ident("Unimplemented"), "(", strconv.Quote(handler+"."+n), ", ",
			strconv.Quote(string(ev.msg.Desc.FullName())), ")")
		g.P("}")
		g.P()
	}
	comment(g, "Register"+name+" subscribes the methods of h to the events of "+source+
		" on r, each through its generated SubscribeX function and so with its contract's policy;"+
		" opts apply to every subscription, after the policy.")
	g.P("func Register", name, "(r *", eventbusPackage.Ident("Router"), ", h ", handler, ", opts ...", eventbusPackage.Ident("SubscribeOption"), ") {")
	for _, ev := range events {
		n := ev.msg.GoIdent.GoName
		g.P("Subscribe", n, "(r, h.", n, ", opts...)")
	}
	g.P("}")
	g.P()
	comment(g, name+" lists every event of "+source+", in the order of the file."+
		" The golden payloads of an event are in contracts/samples/<subject>, the folder its Samples field names.")
	g.P("var ", name, " = ", eventbusPackage.Ident("Registry"), "{")
	for _, ev := range events {
		n := ev.msg.GoIdent.GoName
		g.P("{")
		g.P("Subject: ", n, "Subject,")
		g.P("Stream: ", n, "Stream,")
		g.P("New: func() ", protoPackage.Ident("Message"), " { return new(", ev.msg.GoIdent, ") },")
		g.P("Samples: ", strconv.Quote(ev.subject), ",")
		if ev.policy != nil {
			g.P("Policy: &", n, "Policy,")
		}
		g.P("},")
	}
	g.P("}")
	g.P()
}
