package eventbus_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// pinnedID is the default Nats-Msg-Id of ping("pin-1") on its subject, as
// every earlier version of the runtime computed it: a producer that is
// upgraded while its events are in the stream's duplicate window must keep
// giving an event the id it gave before.
const pinnedID = "3cf9d8fd153e0bcaeff3a1519bb21f92"

// pinnedEnvelopeID pins the id of a message with a map, whose binary
// encoding is deterministic only when asked to be.
const pinnedEnvelopeID = "0f46fd6a6f2987e3282c72601c60c3ca"

func pinnedEnvelope() *testpbv1.Envelope {
	return &testpbv1.Envelope{
		Header: &testpbv1.Envelope_Header{TraceId: "t-1"},
		Labels: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"},
	}
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

func TestMsgIDIsPinned(t *testing.T) {
	id, err := eventbus.MsgID(testpbv1.PingSubject, ping("pin-1"))
	if err != nil || id != pinnedID {
		t.Errorf("MsgID(ping) = %q, %v; want %q", id, err, pinnedID)
	}
	for range 5 { // map order is random: ask more than once
		id, err := eventbus.MsgID("envelopes", pinnedEnvelope())
		if err != nil || id != pinnedEnvelopeID {
			t.Fatalf("MsgID(envelope) = %q, %v; want %q", id, err, pinnedEnvelopeID)
		}
	}
}

func TestNewMsg(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := eventbus.ContextWithTraceparent(context.Background(), parent)
	ev := ping("pin-1")
	wantJSON := `{"id":"pin-1","sent_at":"2024-01-01T10:00:00Z","detail":{"kind":"test"}}`
	wantBinary, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		opts        []eventbus.PublishOption
		contentType string
		data        string
		id          string
	}{
		{"json", nil, eventbus.ContentTypeJSON, wantJSON, pinnedID},
		{"binary", []eventbus.PublishOption{eventbus.WithBinary()}, eventbus.ContentTypeProto, string(wantBinary), pinnedID},
		{"json with id", []eventbus.PublishOption{eventbus.WithMsgID("outbox-7")}, eventbus.ContentTypeJSON, wantJSON, "outbox-7"},
		{"binary with id and header", []eventbus.PublishOption{
			eventbus.WithMsgID("outbox-7"), eventbus.WithBinary(), eventbus.WithHeader("Tenant", "t1"),
		}, eventbus.ContentTypeProto, string(wantBinary), "outbox-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ev, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != testpbv1.PingSubject || string(m.Data) != tt.data {
				t.Errorf("NewMsg = %s %q, want %s %q", m.Subject, m.Data, testpbv1.PingSubject, tt.data)
			}
			want := map[string]string{
				eventbus.HeaderContentType: tt.contentType,
				eventbus.HeaderEventType:   "eventchat.testing.v1.Ping",
				jetstream.MsgIDHeader:      tt.id,
			}
			if len(tt.opts) == 3 {
				want["Tenant"] = "t1"
			}
			for k, v := range want {
				if got := m.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s = %q, want [%q]", k, got, v)
				}
			}
			tp := m.Header.Get(eventbus.HeaderTraceparent)
			if !traceparentRE.MatchString(tp) || tp[3:35] != parent[3:35] || tp[36:52] == parent[36:52] {
				t.Errorf("traceparent %q is not a child of %q", tp, parent)
			}
			if len(m.Header) != len(want)+1 {
				t.Errorf("headers %v, want %d", m.Header, len(want)+1)
			}
		})
	}
}

// TestNewMsgOwnsItsData holds NewMsg to messages that stay intact while
// later ones are made: nats.go keeps an asynchronously published message
// until its acknowledgement.
func TestNewMsgOwnsItsData(t *testing.T) {
	ctx := context.Background()
	first, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping("first"))
	if err != nil {
		t.Fatal(err)
	}
	data, id, tp := string(first.Data), first.Header.Get(jetstream.MsgIDHeader), first.Header.Get(eventbus.HeaderTraceparent)
	for _, opts := range [][]eventbus.PublishOption{nil, {eventbus.WithBinary()}} {
		if _, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping("second-event-longer"), opts...); err != nil {
			t.Fatal(err)
		}
	}
	if string(first.Data) != data || first.Header.Get(jetstream.MsgIDHeader) != id || first.Header.Get(eventbus.HeaderTraceparent) != tp {
		t.Errorf("first message changed to %q %s %s", first.Data, first.Header.Get(jetstream.MsgIDHeader), first.Header.Get(eventbus.HeaderTraceparent))
	}
}

// TestTraceparentStartsTrace checks that a missing or unusable parent starts
// a new trace of its own.
func TestTraceparentStartsTrace(t *testing.T) {
	seen := map[string]bool{}
	for _, parent := range []string{
		"",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
	} {
		ctx := eventbus.ContextWithTraceparent(context.Background(), parent)
		m, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping("p"))
		if err != nil {
			t.Fatal(err)
		}
		tp := m.Header.Get(eventbus.HeaderTraceparent)
		if !traceparentRE.MatchString(tp) || tp[3:35] == "4bf92f3577b34da6a3ce929d0e0e4736" || seen[tp[3:35]] {
			t.Errorf("parent %q: traceparent %q, want a new trace", parent, tp)
		}
		if _, err := hex.DecodeString(tp[3:35]); err != nil {
			t.Error(err)
		}
		seen[tp[3:35]] = true
	}
}

// TestPublishConcurrently publishes distinct events from several goroutines
// at once, JSON and binary, and reads each back from the stream intact:
// Publish encodes into buffers it reuses once nats.go is done with them.
func TestPublishConcurrently(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testpbv1.PingStream, Subjects: []string{testpbv1.PingSubject}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var opts []eventbus.PublishOption
				if i%2 == 1 {
					opts = append(opts, eventbus.WithBinary())
				}
				// Ids of different lengths, so that a payload overwritten
				// by a later one would show.
				ev := ping(fmt.Sprintf("w%d-%s", w, strings.Repeat("x", i)))
				if _, err := testpbv1.PublishPing(ctx, js, ev, opts...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for seq := uint64(1); seq <= workers*each; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var got testpbv1.Ping
		if err := eventbus.Decode(raw.Header.Get(eventbus.HeaderContentType), raw.Data, &got); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		want := ping(got.GetId())
		if !proto.Equal(&got, want) || seen[got.GetId()] {
			t.Errorf("seq %d: %v, want %v once", seq, &got, want)
		}
		seen[got.GetId()] = true
		if id, _ := eventbus.MsgID(testpbv1.PingSubject, want); raw.Header.Get(jetstream.MsgIDHeader) != id {
			t.Errorf("seq %d: id %s, want %s", seq, raw.Header.Get(jetstream.MsgIDHeader), id)
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct events stored, want %d", len(seen), workers*each)
	}
}
