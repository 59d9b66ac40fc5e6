// Command chatconsumer consumes the Activity service's events from NATS
// JetStream and drives the chat service over Connect: it creates an
// activity's group chat, adds and removes its members and sends their system
// notices. In dev mode one process also runs NATS and the chat service.
//
// Usage:
//
//	chatconsumer -f etc/consumer.yaml           run the consumer
//	chatconsumer dlq list|show SEQ|replay SEQ|purge
//	chatconsumer publish EVENT|raw ...
//
// Run "chatconsumer help" for the flags. SIGINT or SIGTERM stops the
// consumer: it stops fetching, lets in-flight events finish (bounded by
// Messaging.DrainTimeout) and exits 0; a second signal exits at once. With
// CHATCONSUMER_TAKE_TERMINAL=1 (set by `make run`) the process takes the
// terminal's foreground, so that Ctrl-C stops it alone and make exits 0 too.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/activitychat/chat/services/chatconsumer/internal/cli"
)

func main() {
	restore := func() {}
	if os.Getenv("CHATCONSUMER_TAKE_TERMINAL") == "1" {
		restore = takeTerminal()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a second
	// one ends the process at once.
	context.AfterFunc(ctx, stop)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	restore()
	os.Exit(code)
}
