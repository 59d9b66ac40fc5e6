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
  chatconsumer [run] [-f FILE]              run the consumer
  chatconsumer dlq list [--from SEQ] [--limit N] [--json]
  chatconsumer dlq show SEQ [--json]
  chatconsumer dlq replay SEQ... | --all
  chatconsumer dlq purge
  chatconsumer publish EVENT [--FIELD VALUE]... [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish EVENT JSON|- [--binary] [--msg-id ID]
  chatconsumer publish raw SUBJECT [JSON|-] [--header KEY=VALUE]... [--core]
  chatconsumer help [COMMAND [SUBCOMMAND]]

Without -f, run reads the first of etc/consumer.yaml,
services/chatconsumer/etc/consumer.yaml and /etc/chatconsumer/consumer.yaml.
The dlq and publish commands connect to NATS as FILE says (-f FILE; the
embedded server of a dev config), or to --nats URL, $NATS_URL or
nats://127.0.0.1:4222. TIME is RFC 3339 and defaults to now. EVENT is an
event of the contract, such as created; "chatconsumer publish --help"
lists them with their fields.
Run "chatconsumer COMMAND --help" for a command's flags.
`

// Main runs the command line args (without the program name) and returns
// the process's exit code. ctx ends the consumer; stdin feeds "publish raw
// SUBJECT -", stdout gets command output and help, stderr the log and
// errors.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	} else if len(args) > 0 && isHelp(args[0]) {
		cmd, rest = "help", nil
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
		err = helpCmd(rest)
	default:
		err = usageErrorf("unknown command %q", cmd)
	}
	return report(err, stdout, stderr)
}

// helpCmd answers "help [COMMAND [SUBCOMMAND]]" as COMMAND SUBCOMMAND --help
// would.
func helpCmd(args []string) error {
	if len(args) == 0 {
		return &helpError{text: usage}
	}
	switch args[0] {
	case "run":
		return runCmd(context.Background(), []string{"--help"}, io.Discard, io.Discard)
	case "dlq":
		return dlqCmd(context.Background(), append(args[1:len(args):len(args)], "--help"), io.Discard, io.Discard)
	case "publish":
		return publishCmd(context.Background(), append(args[1:len(args):len(args)], "--help"), nil, io.Discard)
	}
	return usageErrorf("help: unknown command %q", args[0])
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// helpError carries the help a command line asked for; it is printed to
// standard output and the exit code is ExitOK.
type helpError struct{ text string }

func (e *helpError) Error() string { return e.text }

// commandHelp returns the help of one command: its usage lines, what it
// does, and the flags of fs named in flags (all of them when flags is
// empty).
func commandHelp(fs *flag.FlagSet, lines, about string, flags ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n%s\n%s", lines, about)
	var fb strings.Builder
	fs.SetOutput(&fb)
	want := map[string]bool{}
	for _, f := range flags {
		want[f] = true
	}
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if len(flags) == 0 || want[f.Name] {
			sub.Var(f.Value, f.Name, f.Usage)
		}
	})
	sub.SetOutput(&fb)
	sub.PrintDefaults()
	if fb.Len() > 0 {
		b.WriteString("\nFlags:\n")
		b.WriteString(fb.String())
	}
	return &helpError{text: b.String()}
}

// report prints err and returns the exit code it means.
func report(err error, stdout, stderr io.Writer) int {
	var (
		ue *usageError
		he *helpError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.text)
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
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
