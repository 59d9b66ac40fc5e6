// Command protoc-gen-go-events is a protoc plugin that turns protobuf
// messages carrying the (eventchat.options.v1.event) option into typed
// JetStream contracts running on the eventbus runtime. It writes
// <file>.contract.go next to the output of protoc-gen-go, holding:
//
//   - per proto file with events, the contract API: a handler interface with
//     one method per event, named <Name>Handler; an
//     Unimplemented<Name>Handler that dead-letters every event; a
//     Register<Name> function that subscribes all of them; and <Name>, an
//     eventbus.Registry listing each event's subject, stream, message type,
//     samples folder and policy. <Name> comes from the package and file
//     names: activity/v1/events.proto gives ActivityEvents (see
//     contractName);
//   - per event, its subject and stream constants, an eventbus.Event, the
//     resolved eventbus.Policy when the option declares one, a handler
//     function type, PublishX, SubscribeX (which applies the policy before
//     its caller's options) and a LogValue method that logs the id fields;
//   - per message whose fields carry (eventchat.options.v1.rules), or that
//     holds such messages, a Validate method that checks nested messages
//     too.
//
// Each generated file refers to eventbus.IsAtLeastVersion0_2_0 and
// rules.IsAtLeastVersion0_2_0 as needed, so that it does not compile against
// a runtime older than it needs. Options it cannot honour fail generation
// with the file, line, message or field and the option named.
//
// It is run by buf generate (see buf.gen.yaml).
package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/protobuf/compiler/protogen"
)

// version is the plugin's version, printed by --version and written into
// every generated file's header.
const version = "v0.2.0"

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("protoc-gen-go-events " + version)
		return
	}
	var flags flag.FlagSet
	protogen.Options{ParamFunc: flags.Set}.Run(generate)
}
