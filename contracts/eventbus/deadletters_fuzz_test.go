package eventbus

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FuzzDeadLetterHeaders feeds arbitrary stored subjects, Dlq-* header
// values and payloads to the dead-letter parsing and the replay-target
// check, and arbitrary originals to the dead-letter builder. It checks
// that nothing panics; that a replay target is only ever the service's
// replay subject of a stream subject that a consumer reads, derived from
// the stored subject and never from a header; and that a built dead letter
// fits the max payload and parses back to its original subject.
//
//	go test -run '^$' -fuzz FuzzDeadLetterHeaders -fuzztime 60s ./eventbus/
func FuzzDeadLetterHeaders(f *testing.F) {
	const stream = "ACTIVITY"
	seeds, _ := filepath.Glob("../samples/*/*")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		subject := filepath.Base(filepath.Dir(path))
		f.Add(DLQSubject(subject, "chat_consumer"), "chat_consumer", subject, stream, "7", "3",
			"2024-01-01T10:00:00Z", "", "", "boom", data, int64(1<<20))
	}
	f.Add("activity.created.dlq.chat_consumer", "chat_consumer", "$JS.API.STREAM.PURGE.ACTIVITY", stream, "1", "1",
		"", "", "", "", []byte(`{}`), int64(1024))
	f.Add("activity.created.dlq", "chat_consumer", "activity.created", stream, "1", "1", "", "", "", "", []byte(`{}`), int64(1024))
	f.Add("activity.created.dlq.other", "chat.consumer", "activity.created", "OTHER", "x", "-1",
		"not a time", PayloadTruncated, "99999999999999999999", "", []byte{0xff, 0, 1}, int64(512))
	f.Add(".dlq.chat_consumer", "chat_consumer", "", stream, "18446744073709551616", "", "", PayloadLost, "", "", []byte(nil), int64(1))
	f.Add("a.b.dlq.x.dlq.x", "x", "a.b.dlq.x", stream, "", "", "", "bogus", "", "\r\n\x1b]0;title\a", []byte("x"), int64(300))

	streamSubjects := []string{
		"activity.created", "activity.member.joined", "activity.member.left",
		"activity.created.replay.*", "activity.member.joined.replay.*", "activity.member.left.replay.*",
	}
	filters := []string{
		"activity.created", "activity.created.replay.chat_consumer",
		"activity.member.joined", "activity.member.joined.replay.chat_consumer",
	}
	f.Fuzz(func(t *testing.T, stored, service, hSubject, hStream, hSeq, hDeliveries, hTime, hPayload, hSize, reason string,
		data []byte, maxPayload int64,
	) {
		h := nats.Header{}
		for k, v := range map[string]string{
			HeaderDLQSubject: hSubject, HeaderDLQStream: hStream, HeaderDLQSequence: hSeq,
			HeaderDLQDeliveries: hDeliveries, HeaderDLQTime: hTime, HeaderDLQPayload: hPayload,
			HeaderDLQPayloadSize: hSize, HeaderDLQReason: reason,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		token := serviceToken(service)
		if strings.ContainsAny(token, ". \t\r\n*>") || token == "" {
			t.Fatalf("service %q makes the subject token %q", service, token)
		}
		dl, ok := parseDeadLetter(3, stored, service, h, data)
		if ok {
			if dl.Subject == "" || dl.Subject+dlqToken+token != stored {
				t.Fatalf("stored on %q, parsed subject %q", stored, dl.Subject)
			}
			target, err := replayTarget(dl, stream, token, streamSubjects, filters)
			switch {
			case err != nil && !errors.Is(err, ErrReplayRefused):
				t.Fatalf("refusal %v does not match ErrReplayRefused", err)
			case err == nil:
				if target != dl.Subject+replayToken+token || hSubject != dl.Subject || hStream != stream {
					t.Fatalf("replay of %q (header %q) goes to %q", stored, hSubject, target)
				}
				if !contains(filters, target) || !contains(streamSubjects, dl.Subject) {
					t.Fatalf("replay target %q is not a consumer's replay subject", target)
				}
			}
		} else if s, cut := strings.CutSuffix(stored, dlqToken+token); cut && s != "" {
			t.Fatalf("%q is a dead-letter subject of %q but did not parse", stored, service)
		}

		// Build a dead letter of an arbitrary original and read it back.
		if maxPayload < 2048 || maxPayload > 1<<24 || !validSubject(hSubject) {
			return
		}
		orig := nats.Header{}
		orig.Set("X-Fuzz", reason)
		orig.Set(jetstream.MsgIDHeader, hSeq)
		seq, _ := strconv.ParseUint(hSeq, 10, 64)
		rec := deadLetterRecord{
			Subject: hSubject, Stream: stream, StreamSeq: seq, Deliveries: 2, Consumer: "c", Kind: deadLetterTerminated,
			Reason: reason, Header: orig, Data: data,
		}
		if hPayload == PayloadLost {
			rec.Missing = hSize
			if rec.Missing == "" {
				rec.Missing = "gone"
			}
		}
		msg, cause := buildDeadLetter(rec, hSubject, service, maxPayload, time.Unix(0, 0))
		if size := headerSize(msg.Header) + int64(len(msg.Data)) + int64(len("Nats-Expected-Stream: "+DLQStream(stream)+"\r\n")); size > maxPayload {
			t.Fatalf("dead letter of %d bytes exceeds the max payload %d", size, maxPayload)
		}
		back, ok := parseDeadLetter(9, msg.Subject, service, msg.Header, msg.Data)
		if !ok || back.Subject != hSubject || back.StreamSeq != seq || back.Header.Get(HeaderDLQSubject) != hSubject {
			t.Fatalf("dead letter on %q does not parse back to %q: %+v", msg.Subject, hSubject, back)
		}
		switch {
		case rec.Missing != "":
			if cause != incompleteOriginalLost || back.Payload != PayloadLost || len(back.Data) != 0 {
				t.Fatalf("lost original: cause %q payload %q", cause, back.Payload)
			}
		case cause == "":
			if back.Payload != "" || string(back.Data) != string(data) {
				t.Fatal("a dead letter that fits is not the original")
			}
		default:
			if back.Payload != PayloadTruncated || back.PayloadSize != len(data) || !strings.HasPrefix(string(data), string(back.Data)) {
				t.Fatalf("truncated: payload %q size %d", back.Payload, back.PayloadSize)
			}
		}
	})
}

func contains(patterns []string, subject string) bool {
	for _, p := range patterns {
		if subjectMatches(p, subject) {
			return true
		}
	}
	return false
}

// validSubject reports whether s is a literal NATS subject.
func validSubject(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}
