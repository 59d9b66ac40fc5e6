package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// forwarder moves the messages that a stream's consumers gave up on to their
// dead-letter subjects. It reads the give-up advisories from the advisory
// stream through a durable consumer, so a restart resumes where it stopped,
// and publishes each dead letter under a Nats-Msg-Id made of stream,
// sequence and consumer, so a repeat after a crash is deduplicated.
type forwarder struct {
	router  *Router
	stream  string
	durable string
	filters []string
	log     *slog.Logger
	source  jetstream.Stream // the stream dead letters come from
}

// advisory holds the fields of the MAX_DELIVERIES and MSG_TERMINATED
// advisories that the forwarder reads.
type advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

func (r *Router) forwarders(subs []*subscription) []*forwarder {
	byStream := map[string]*forwarder{}
	var out []*forwarder
	for _, s := range subs {
		f, ok := byStream[s.stream]
		if !ok {
			f = &forwarder{
				router:  r,
				stream:  s.stream,
				durable: r.cfg.service + "-dlq-forwarder",
				log:     r.log.With(slog.String("component", "dlq-forwarder"), slog.String("stream", s.stream)),
			}
			byStream[s.stream] = f
			out = append(out, f)
		}
		f.filters = append(f.filters,
			advisoryMaxDeliveries+"."+s.stream+"."+s.cfg.durable,
			advisoryTerminated+"."+s.stream+"."+s.cfg.durable)
	}
	return out
}

func (f *forwarder) run(ctx context.Context) {
	js := f.router.js
	for ctx.Err() == nil {
		c, err := js.CreateOrUpdateConsumer(ctx, advisoryStream(f.stream), jetstream.ConsumerConfig{
			Durable:        f.durable,
			Description:    "dead-letter forwarder of " + f.router.cfg.service,
			FilterSubjects: f.filters,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        30 * time.Second,
			MaxAckPending:  64,
		})
		if err != nil {
			f.log.Error("cannot create forwarder consumer; retrying", slog.Any("error", err))
			sleep(ctx, time.Second)
			continue
		}
		it, err := c.Messages(jetstream.PullMaxMessages(64))
		if err != nil {
			f.log.Error("cannot read advisories; retrying", slog.Any("error", err))
			sleep(ctx, time.Second)
			continue
		}
		stop := context.AfterFunc(ctx, it.Drain)
		for {
			msg, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					f.log.Warn("reading advisories stopped; restarting", slog.Any("error", err))
					it.Stop()
				}
				break
			}
			if ctx.Err() != nil {
				_ = msg.Nak() // shutting down: back to the server at once
				continue
			}
			if err := f.forward(ctx, msg); err != nil {
				f.log.Error("cannot forward dead letter; will retry", slog.Any("error", err))
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			_ = msg.Ack()
		}
		stop()
	}
}

// forward publishes the message an advisory names to its dead-letter subject.
// A forward under way finishes even when ctx ends.
func (f *forwarder) forward(ctx context.Context, msg jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var adv advisory
	if err := json.Unmarshal(msg.Data(), &adv); err != nil {
		f.log.Error("dropping unreadable advisory", slog.String("subject", msg.Subject()), slog.Any("error", err))
		return nil
	}
	kind, reason := deadLetterTerminated, adv.Reason
	if strings.HasPrefix(msg.Subject(), advisoryMaxDeliveries) {
		kind, reason = deadLetterMaxDeliveries, fmt.Sprintf("max deliveries (%d) reached", adv.Deliveries)
	}
	if reason == "" {
		reason = "terminated by the consumer"
	}
	js := f.router.js
	if f.source == nil || f.source.CachedInfo().Config.Name != adv.Stream {
		s, err := js.Stream(ctx, adv.Stream)
		if err != nil {
			return fmt.Errorf("stream %s: %w", adv.Stream, err)
		}
		f.source = s
	}
	orig, err := f.source.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		f.log.Error("dead letter lost: the original is no longer in its stream",
			slog.Uint64("stream_seq", adv.StreamSeq), slog.String("consumer", adv.Consumer), slog.String("reason", reason))
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s #%d: %w", adv.Stream, adv.StreamSeq, err)
	}
	dup, err := f.router.storeDeadLetter(ctx, deadLetterRecord{
		Subject: orig.Subject, Stream: adv.Stream, StreamSeq: adv.StreamSeq,
		Deliveries: adv.Deliveries, Consumer: adv.Consumer, Kind: kind, Reason: reason,
		Header: orig.Header, Data: orig.Data,
	})
	if err != nil {
		return err
	}
	f.log.Warn("dead-lettered",
		slog.String("subject", orig.Subject), slog.Uint64("stream_seq", adv.StreamSeq),
		slog.String("consumer", adv.Consumer), slog.Uint64("deliveries", adv.Deliveries),
		slog.String("reason", reason), slog.Bool("duplicate", dup))
	return nil
}
