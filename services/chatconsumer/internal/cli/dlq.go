package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// dlqCmd runs "dlq list|show|replay|purge".
func dlqCmd(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("dlq: missing subcommand: list, show, replay or purge")
	}
	sub, args := args[0], args[1:]
	if isHelp(sub) {
		return &helpError{text: dlqUsage}
	}
	help, ok := dlqHelp[sub]
	if !ok {
		return usageErrorf("dlq: unknown subcommand %q: want list, show, replay or purge", sub)
	}
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	from := fs.Uint64("from", 0, "list from this DLQ `sequence`")
	limit := fs.Int("limit", 100, "list at most `n` dead letters (0: all)")
	all := fs.Bool("all", false, "replay every dead letter")
	streamName := fs.String("stream", "", "the event `stream` whose dead letters to use; needed only when the events have several")
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return commandHelp(fs, help.lines, help.about, help.flags...)
	}
	if err != nil {
		return err
	}
	var seqs []uint64
	switch sub {
	case "list", "purge":
		if len(pos) > 0 {
			return usageErrorf("dlq %s: unexpected argument %q", sub, pos[0])
		}
	case "show", "replay":
		if sub == "show" && len(pos) != 1 {
			return usageErrorf("dlq show: want exactly one SEQ, got %d arguments", len(pos))
		}
		if sub == "replay" && len(pos) == 0 && !*all {
			return usageErrorf("dlq replay: want SEQ... or --all")
		}
		for _, p := range pos {
			n, err := strconv.ParseUint(p, 10, 64)
			if err != nil || n == 0 {
				return usageErrorf("dlq %s: SEQ must be a positive integer, got %q", sub, p)
			}
			seqs = append(seqs, n)
		}
	}

	stream, err := eventStream(*streamName)
	if err != nil {
		return err
	}
	tc, err := cf.connect()
	if err != nil {
		return err
	}
	defer tc.close()
	dl, err := tc.deadLetters(ctx, stream)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return dlqList(ctx, dl, stream, *from, *limit, *asJSON, stdout)
	case "show":
		return dlqShow(ctx, dl, seqs[0], *asJSON, stdout)
	case "replay":
		if *all {
			letters, err := dl.List(ctx, 0, 0)
			if err != nil {
				return err
			}
			for _, l := range letters {
				seqs = append(seqs, l.Seq)
			}
		}
		for _, seq := range seqs {
			l, err := dl.Get(ctx, seq)
			if err != nil {
				return err
			}
			ack, err := dl.Replay(ctx, seq)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "replayed dead letter %d to %s (stream %s sequence %d)\n", seq, termSafe(l.Subject), termSafe(ack.Stream), ack.Sequence)
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
		}
		return nil
	case "purge":
		n, err := dl.Count(ctx)
		if err != nil {
			return err
		}
		if err := dl.Purge(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d dead letters\n", n)
	}
	return nil
}

func dlqList(ctx context.Context, dl *eventbus.DeadLetters, stream string, from uint64, limit int, asJSON bool, w io.Writer) error {
	letters, err := dl.List(ctx, from, limit)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]letterJSON, 0, len(letters))
		for i := range letters {
			out = append(out, toJSON(&letters[i]))
		}
		return writeJSON(w, out)
	}
	total, err := dl.Count(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSUBJECT\tSTREAM SEQ\tDELIVERIES\tTIME\tREASON")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", l.Seq, termSafe(l.Subject), l.StreamSeq, l.Deliveries, l.Time.Format(time.RFC3339), oneLine(l.Reason, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d shown, %d dead letters in %s\n", len(letters), total, eventbus.DLQStream(stream))
	return nil
}

func dlqShow(ctx context.Context, dl *eventbus.DeadLetters, seq uint64, asJSON bool, w io.Writer) error {
	l, err := dl.Get(ctx, seq)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, toJSON(l))
	}
	// Everything but the numbers comes from the event or its headers and is
	// escaped; --json prints it exactly.
	fmt.Fprintf(w, "Dead letter %d\n", l.Seq)
	fmt.Fprintf(w, "  Subject:    %s\n", termSafe(l.Subject))
	fmt.Fprintf(w, "  Original:   stream %s sequence %d\n", termSafe(l.Stream), l.StreamSeq)
	fmt.Fprintf(w, "  Consumer:   %s\n", termSafe(l.Consumer))
	fmt.Fprintf(w, "  Deliveries: %d\n", l.Deliveries)
	fmt.Fprintf(w, "  Time:       %s\n", l.Time.Format(time.RFC3339Nano))
	fmt.Fprintf(w, "  Reason:     %s\n", termSafe(l.Reason))
	if l.Payload != "" {
		fmt.Fprintf(w, "  Payload:    %s (%s)\n", termSafe(l.Payload), termSafe(l.Header.Get(eventbus.HeaderDLQPayloadReason)))
	}
	fmt.Fprintln(w, "Headers:")
	keys := make([]string, 0, len(l.Header))
	for k := range l.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range l.Header[k] {
			if v == "" {
				continue // an optional header left empty, such as Dlq-Original-Id
			}
			fmt.Fprintf(w, "  %s: %s\n", termSafe(k), termSafe(v))
		}
	}
	fmt.Fprintf(w, "Payload (%d bytes):\n", len(l.Data))
	fmt.Fprintln(w, payloadText(l.Data))
	if decoded := decodeForShow(l); decoded != "" {
		fmt.Fprintf(w, "Decoded as %s:\n%s\n", l.Subject, decoded)
	}
	return nil
}

// letterJSON is the JSON form of a dead letter.
type letterJSON struct {
	Seq        uint64              `json:"seq"`
	Subject    string              `json:"subject"`
	Stream     string              `json:"stream"`
	StreamSeq  uint64              `json:"stream_seq"`
	Deliveries int                 `json:"deliveries"`
	Consumer   string              `json:"consumer"`
	Reason     string              `json:"reason"`
	Payload    string              `json:"payload,omitempty"`
	Time       time.Time           `json:"time"`
	Header     map[string][]string `json:"header"`
	Data       string              `json:"data"`
	DataBase64 string              `json:"data_base64,omitempty"`
}

func toJSON(l *eventbus.DeadLetter) letterJSON {
	out := letterJSON{
		Seq: l.Seq, Subject: l.Subject, Stream: l.Stream, StreamSeq: l.StreamSeq,
		Deliveries: l.Deliveries, Consumer: l.Consumer, Reason: l.Reason, Payload: l.Payload, Time: l.Time,
		Header: l.Header,
	}
	if utf8.Valid(l.Data) {
		out.Data = string(l.Data)
	} else {
		out.DataBase64 = base64.StdEncoding.EncodeToString(l.Data)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// payloadText shows a payload: as text when it is UTF-8, base64 otherwise.
func payloadText(data []byte) string {
	if utf8.Valid(data) {
		return "  " + termSafe(string(data))
	}
	return "  base64:" + base64.StdEncoding.EncodeToString(data)
}

// decodeForShow decodes a binary protobuf dead letter of a known subject to
// JSON, so that an operator can read it; "" when it is not binary or does
// not decode.
func decodeForShow(l *eventbus.DeadLetter) string {
	if utf8.Valid(l.Data) {
		return ""
	}
	ev, ok := activityv1.ActivityEvents.Lookup(l.Subject)
	if !ok {
		return ""
	}
	msg := ev.New()
	if err := proto.Unmarshal(l.Data, msg); err != nil {
		return ""
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return ""
	}
	return "  " + string(b)
}

// oneLine cuts s to one line of at most n runes, escaped for a terminal.
func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return termSafe(s)
}

const dlqUsage = `Usage:
  chatconsumer dlq list [--from SEQ] [--limit N] [--json]
  chatconsumer dlq show SEQ [--json]
  chatconsumer dlq replay SEQ... | --all
  chatconsumer dlq purge

Dead letters are the events a handler gave up on, kept with the reason in
the dead-letter stream of their event stream (STREAM_DLQ). list and show print them (text from the event is
escaped; --json prints it exactly), replay publishes them again to their
subject (a poison event is dead-lettered again), purge deletes them all.
Every form takes -f FILE or --nats URL to find NATS, and --stream STREAM
when the events are stored in more than one stream.
Run "chatconsumer dlq SUBCOMMAND --help" for its flags.
`

// dlqHelp is the help of each dlq subcommand: usage, what it does and its
// flags.
var dlqHelp = map[string]struct {
	lines, about string
	flags        []string
}{
	"list": {
		"  chatconsumer dlq list [--from SEQ] [--limit N] [--json]\n",
		"Lists dead letters: sequence, subject, original stream sequence, deliveries,\ntime and reason.\n",
		[]string{"from", "limit", "json", "stream", "f", "nats"},
	},
	"show": {
		"  chatconsumer dlq show SEQ [--json]\n",
		"Shows one dead letter: its headers, its payload and, for binary protobuf,\nthe payload decoded.\n",
		[]string{"json", "stream", "f", "nats"},
	},
	"replay": {
		"  chatconsumer dlq replay SEQ... | --all\n",
		"Publishes dead letters again to the subject they were consumed from. The\nhandlers are idempotent; an event that still fails (a poison message) is\ndead-lettered again.\n",
		[]string{"all", "stream", "f", "nats"},
	},
	"purge": {
		"  chatconsumer dlq purge\n",
		"Deletes every dead letter.\n",
		[]string{"stream", "f", "nats"},
	},
}
