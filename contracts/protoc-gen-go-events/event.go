package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/activitychat/chat/contracts/eventbus"
	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
)

// event is one message with the event option.
type event struct {
	msg     *protogen.Message
	subject string
	stream  string
	policy  *eventbus.Policy // nil when the contract declares none
}

// eventOf returns the event that msg declares with the event option, nil
// when it has none, or an error naming what is wrong with the option.
func eventOf(file *protogen.File, msg *protogen.Message) (*event, error) {
	opts, ok := proto.GetExtension(msg.Desc.Options(), optionsv1.E_Event).(*optionsv1.EventOptions)
	if !ok || opts == nil {
		return nil, nil
	}
	name := msg.Desc.FullName()
	if err := checkSubject(opts.GetSubject()); err != nil {
		return nil, errorAt(file, eventOptionPath(file, msg, eventSubjectNumber),
			"%s: (eventchat.options.v1.event).subject %q: %v", name, opts.GetSubject(), err)
	}
	if err := checkStream(opts.GetStream()); err != nil {
		return nil, errorAt(file, eventOptionPath(file, msg, eventStreamNumber),
			"%s: (eventchat.options.v1.event).stream %q: %v", name, opts.GetStream(), err)
	}
	policy, err := policyOf(file, msg, opts.GetPolicy())
	if err != nil {
		return nil, err
	}
	return &event{msg: msg, subject: opts.GetSubject(), stream: opts.GetStream(), policy: policy}, nil
}

func checkSubject(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("must be a literal subject: dot-separated tokens without wildcards or spaces")
		}
	}
	if strings.HasSuffix(s, ".dlq") {
		return fmt.Errorf("must not end in .dlq, which names dead-letter subjects")
	}
	return nil
}

func checkStream(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if strings.ContainsAny(s, ".*> \t\r\n/\\") {
		return fmt.Errorf("must not contain '.', '*', '>', '/', '\\' or white space")
	}
	return nil
}

// generateEvent writes the declarations of one event: its subject, stream,
// eventbus.Event, policy, handler type, publisher, LogValue and subscriber.
func generateEvent(g *protogen.GeneratedFile, ev *event) {
	name := ev.msg.GoIdent.GoName
	msgType := g.QualifiedGoIdent(ev.msg.GoIdent)
	ctx := g.QualifiedGoIdent(contextPackage.Ident("Context"))
	meta := g.QualifiedGoIdent(eventbusPackage.Ident("Meta"))

	comment(g, name+"Subject is the NATS subject "+name+" events are published to.")
	g.P("const ", name, "Subject = ", strconv.Quote(ev.subject))
	g.P()
	comment(g, name+"Stream is the JetStream stream that stores "+name+" events.")
	g.P("const ", name, "Stream = ", strconv.Quote(ev.stream))
	g.P()
	comment(g, name+"Event describes the "+name+" contract to the eventbus runtime.")
	g.P("var ", name, "Event = ", eventbusPackage.Ident("Event"), "[*", msgType, "]{")
	g.P("Subject: ", name, "Subject,")
	g.P("Stream: ", name, "Stream,")
	g.P("New: func() *", msgType, " { return new(", msgType, ") },")
	g.P("}")
	g.P()
	if ev.policy != nil {
		generatePolicy(g, ev)
	}
	comment(g, name+"Handler handles one "+name+" event. Returning nil acknowledges the event;"+
		" see the eventbus package for how errors are retried or dead-lettered.")
	g.P("type ", name, "Handler func(ctx ", ctx, ", event *", msgType, ", meta ", meta, ") error")
	g.P()
	comment(g, "Publish"+name+" validates event, encodes it and publishes it to "+name+
		"Subject, waiting for the stream's acknowledgement.")
	g.P("func Publish", name, "(ctx ", ctx, ", js ", jetstreamPackage.Ident("JetStream"),
		", event *", msgType, ", opts ...", eventbusPackage.Ident("PublishOption"), ") (*", jetstreamPackage.Ident("PubAck"), ", error) {")
	g.P("return ", eventbusPackage.Ident("Publish"), "(ctx, js, ", name, "Event, event, opts...)")
	g.P("}")
	g.P()
	generateLogValue(g, ev)
	doc := []string{"Subscribe" + name + " registers h to handle " + name + " events on r, through a durable consumer of " +
		name + "Stream filtered to " + name + "Subject. The subscription starts when r runs."}
	if ev.policy != nil {
		doc = append(doc, name+"Policy applies first, then opts: an option in opts, such as eventbus.WithRetry,"+
			" overrides the contract's policy.")
	}
	comment(g, doc...)
	g.P("func Subscribe", name, "(r *", eventbusPackage.Ident("Router"), ", h ", name, "Handler, opts ...", eventbusPackage.Ident("SubscribeOption"), ") {")
	if ev.policy != nil {
		g.P("opts = append([]", eventbusPackage.Ident("SubscribeOption"), "{", name, "Policy}, opts...)")
	}
	g.P(eventbusPackage.Ident("Subscribe"), "(r, ", name, "Event, ", eventbusPackage.Ident("Handler"), "[*", msgType, "](h), opts...)")
	g.P("}")
	g.P()
}

// generatePolicy writes the resolved policy of ev as an eventbus.Policy.
func generatePolicy(g *protogen.GeneratedFile, ev *event) {
	name := ev.msg.GoIdent.GoName
	p := ev.policy
	comment(g, name+"Policy is the delivery policy the "+name+" contract declares, with the eventbus defaults"+
		" for what it leaves out. Subscribe"+name+" applies it before its caller's options.")
	g.P("var ", name, "Policy = ", eventbusPackage.Ident("Policy"), "{")
	g.P("Retry: ", eventbusPackage.Ident("Retry"), "{")
	g.P("MaxRetries: ", p.Retry.MaxRetries, ",")
	g.P("InitialInterval: ", durationExpr(g, p.Retry.InitialInterval), ",")
	g.P("MaxInterval: ", durationExpr(g, p.Retry.MaxInterval), ",")
	g.P("Multiplier: ", strconv.FormatFloat(p.Retry.Multiplier, 'g', -1, 64), ",")
	g.P("MaxHold: ", durationExpr(g, p.Retry.MaxHold), ",")
	g.P("},")
	g.P("DeadLetter: ", p.DeadLetter, ",")
	if p.OrderingKey != "" {
		g.P("OrderingKey: ", strconv.Quote(p.OrderingKey), ",")
	}
	g.P("}")
	g.P()
}

// durationExpr writes d as a Go expression in the largest unit that divides
// it, such as 2 * time.Minute or 1500 * time.Millisecond.
func durationExpr(g *protogen.GeneratedFile, d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{
		{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"},
		{time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"},
	} {
		if d%u.d == 0 {
			return fmt.Sprintf("%d * %s", d/u.d, g.QualifiedGoIdent(timePackage.Ident(u.name)))
		}
	}
	panic("unreachable")
}

// generateLogValue writes a LogValue method that logs the event's identifier
// fields (those with the id rule) and nothing else, so that free text such as
// titles never reaches the logs.
func generateLogValue(g *protogen.GeneratedFile, ev *event) {
	var ids []*protogen.Field
	for _, f := range ev.msg.Fields {
		if r := rulesOf(f); r != nil && r.GetId() && f.Desc.Kind() == protoreflect.StringKind {
			ids = append(ids, f)
		}
	}
	g.P("// LogValue logs the identifier fields of x, for log/slog.")
	g.P("func (x *", ev.msg.GoIdent, ") LogValue() ", slogPackage.Ident("Value"), " {")
	g.P("return ", slogPackage.Ident("GroupValue"), "(")
	for _, f := range ids {
		g.P(slogPackage.Ident("String"), "(", strconv.Quote(string(f.Desc.Name())), ", x.Get", f.GoName, "()),")
	}
	g.P(")")
	g.P("}")
	g.P()
}
