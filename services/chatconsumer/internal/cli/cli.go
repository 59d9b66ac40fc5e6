// Package cli is the chatconsumer command line: running the consumer,
// managing dead letters and publishing activity events.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes of Main.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong
)

const usage = `chatconsumer consumes activity events and drives the chat service.

Usage:
  chatconsumer [run] [-f FILE]              run the consumer (default FILE: etc/consumer.yaml)
  chatconsumer dlq list [--from SEQ] [--limit N] [--json]
  chatconsumer dlq show SEQ [--json]
  chatconsumer dlq replay SEQ... | --all
  chatconsumer dlq purge
  chatconsumer publish created --activity ID --creator ID --title TEXT [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish joined  --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish left    --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish raw SUBJECT [JSON|-] [--header KEY=VALUE]... [--core]

The dlq and publish commands connect to NATS as FILE says (-f FILE; the
embedded server of a dev config), or to --nats URL, $NATS_URL or
nats://127.0.0.1:4222. TIME is RFC 3339 and defaults to now.
`

// Main runs the command line args (without the program name) and returns
// the process's exit code. ctx ends the consumer; stdin feeds "publish raw
// SUBJECT -", stdout gets command output, stderr the log and errors.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runCmd(ctx, rest, stdout, stderr)
	case "dlq":
		err = dlqCmd(ctx, rest, stdout, stderr)
	case "publish":
		err = publishCmd(ctx, rest, stdin, stdout)
	case "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		err = usageErrorf("unknown command %q", cmd)
	}
	return report(err, stderr)
}

// report prints err and returns the exit code it means.
func report(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "chatconsumer: %v\n\n%s", err, usage)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "chatconsumer: %v\n", err)
		return ExitError
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parse parses args with fs, allowing flags after positional arguments,
// and returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageErrorf("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
