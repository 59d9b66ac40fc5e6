// Command protoc-gen-go-events is a protoc plugin that turns protobuf
// messages carrying the (eventchat.options.v1.event) option into typed
// JetStream contracts: a subject constant, a publisher, a handler type and a
// subscribe function per event, all running on the eventbus runtime. For every
// message whose fields carry (eventchat.options.v1.rules) it also generates a
// Validate method.
//
// It is run by buf generate (see buf.gen.yaml) and writes <file>.contract.go
// next to the output of protoc-gen-go.
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
