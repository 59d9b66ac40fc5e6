package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// forwardedAdvisories are the advisories the forwarder turns into dead
// letters, and the ones the advisory streams the router creates capture.
// Only MAX_DELIVERIES: a subscription stores every dead letter itself before
// it terminates the message, so a MSG_TERMINATED advisory has nothing left
// to add, and a stale Term (one whose redelivery was already acked) must not
// dead-letter an applied message.
var forwardedAdvisories = []string{advisoryMaxDeliveries}

// Bounds of the forwarder's own retries: an advisory it cannot forward is
// retried forwardAttempts times, backing off from forwardBackoff up to
// forwardMaxBackoff, and then recorded as a dead letter without payload.
var forwardBackoff = time.Second // a variable for tests

const (
	forwardAttempts   = 5
	forwardMaxBackoff = 30 * time.Second
	// forwarderAckWait bounds one forward (fetch, store, delete, ack).
	forwarderAckWait = 30 * time.Second
	// forwarderMaxAckPending bounds the advisories in flight; a retried
	// advisory holds one slot for at most its bounded backoff.
	forwarderMaxAckPending = 1024
)

// forwarder moves the messages that a stream's consumers gave up on to their
// dead-letter subjects. It reads the give-up advisories from the advisory
// stream through a durable consumer, so a restart resumes where it stopped,
// and publishes each dead letter under a Nats-Msg-Id made of stream,
// sequence and consumer, so a repeat after a crash is deduplicated.
//
// An advisory it has forwarded is gone from the advisory stream: it is
// acknowledged on a work-queue stream, and deleted on a limits stream (one
// created by an earlier release), so a consumer created again after it was
// lost does not forward old dead letters a second time.
type forwarder struct {
	router  *Router
	stream  string
	durable string
	filters []string
	// subjects maps the durable consumers whose advisories this forwarder
	// reads to the subject each consumes.
	subjects map[string]string
	// dropped holds the durable consumers whose contract Policy turns dead
	// letters off: their advisories are acknowledged without a dead letter.
	dropped map[string]bool
	log     *slog.Logger
	source  jetstream.Stream // the stream dead letters come from
	advs    jetstream.Stream // the advisory stream
	// deleteForwarded is set on a limits advisory stream: acknowledging
	// does not remove an advisory there, so the forwarder deletes it.
	deleteForwarded bool
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
				router:   r,
				stream:   s.stream,
				durable:  r.cfg.service + "-dlq-forwarder",
				subjects: map[string]string{},
				dropped:  map[string]bool{},
				log:      r.log.With(slog.String("component", "dlq-forwarder"), slog.String("stream", s.stream)),
			}
			byStream[s.stream] = f
			out = append(out, f)
		}
		f.subjects[s.cfg.durable] = s.subject
		if s.cfg.noDeadLetter {
			f.dropped[s.cfg.durable] = true
		}
		for _, a := range forwardedAdvisories {
			f.filters = append(f.filters, a+"."+s.stream+"."+s.cfg.durable)
		}
	}
	return out
}

func (f *forwarder) run(ctx context.Context) {
	js := f.router.js
	for ctx.Err() == nil {
		advs, err := js.Stream(ctx, advisoryStream(f.stream))
		if err != nil {
			f.log.Error("cannot open the advisory stream; retrying", slog.Any("error", err))
			sleep(ctx, time.Second)
			continue
		}
		f.advs = advs
		f.deleteForwarded = advs.CachedInfo().Config.Retention == jetstream.LimitsPolicy
		c, err := js.CreateOrUpdateConsumer(ctx, advisoryStream(f.stream), jetstream.ConsumerConfig{
			Durable:        f.durable,
			Description:    "dead-letter forwarder of " + f.router.cfg.service,
			FilterSubjects: f.filters,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        forwarderAckWait,
			MaxAckPending:  forwarderMaxAckPending,
		})
		if err != nil {
			f.log.Error("cannot create forwarder consumer; retrying", slog.Any("error", err))
			sleep(ctx, time.Second)
			continue
		}
		if f.deleteForwarded {
			f.purgeForwarded(ctx, c)
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
			f.handle(ctx, msg)
		}
		stop()
	}
}

// purgeForwarded removes, from a limits advisory stream, the advisories
// of this forwarder's consumers that are below its ack floor: an earlier
// release acknowledged them without deleting them, and a consumer created
// again would forward them once more.
func (f *forwarder) purgeForwarded(ctx context.Context, c jetstream.Consumer) {
	floor := c.CachedInfo().AckFloor.Stream
	if floor == 0 {
		return
	}
	// An earlier release also forwarded MSG_TERMINATED advisories, and its
	// limits stream still captures them; the ones it forwarded go too.
	filters := slices.Clone(f.filters)
	for durable := range f.subjects {
		filters = append(filters, advisoryTerminated+"."+f.stream+"."+durable)
	}
	for _, filter := range filters {
		if err := f.advs.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(floor+1)); err != nil {
			f.log.Warn("cannot remove forwarded advisories", slog.String("subject", filter), slog.Any("error", err))
		}
	}
}

// handle forwards one advisory, retrying a failure a bounded number of
// times with backoff; after the last attempt it records the dead letter
// without its payload, so that no advisory is retried forever.
func (f *forwarder) handle(ctx context.Context, msg jetstream.Msg) {
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	err := f.forward(ctx, msg, "")
	if err != nil && attempt >= forwardAttempts {
		f.log.Error("cannot forward dead letter; recording it without payload",
			slog.Uint64("attempts", attempt), slog.Any("error", err))
		err = f.forward(ctx, msg, fmt.Sprintf("forwarding failed %d times: %v", attempt, err))
	}
	if err != nil {
		delay := min(forwardBackoff<<min(attempt-1, 16), forwardMaxBackoff)
		f.log.Error("cannot forward dead letter; will retry",
			slog.Uint64("attempt", attempt), slog.Duration("in", delay), slog.Any("error", err))
		_ = msg.NakWithDelay(delay)
		return
	}
	if f.deleteForwarded {
		md, err := msg.Metadata()
		if err == nil {
			err = f.advs.DeleteMsg(ctx, md.Sequence.Stream)
		}
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			// Stored but still in the advisory stream: try again; the DLQ
			// deduplicates the repeat.
			f.log.Warn("cannot delete a forwarded advisory; will retry", slog.Any("error", err))
			_ = msg.NakWithDelay(forwardBackoff)
			return
		}
	}
	_ = msg.Ack()
}

// forward stores the dead letter that an advisory announces. With giveUp
// set it stores the dead letter without fetching the original, giveUp
// saying why. A forward under way finishes even when ctx ends.
func (f *forwarder) forward(ctx context.Context, msg jetstream.Msg, giveUp string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// The advisory's subject, which our filters chose, names the stream
	// and the consumer; its body gives the sequence and the details.
	consumer := msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:]
	subject, ok := f.subjects[consumer]
	if !ok {
		f.log.Error("advisory of a consumer this service does not run; acknowledged",
			slog.String("advisory", msg.Subject()))
		return nil
	}
	if f.dropped[consumer] {
		f.log.Warn("given up without a dead letter: the event's policy turns dead letters off",
			slog.String("advisory", msg.Subject()), slog.String("subject", subject))
		return nil
	}
	var adv advisory
	if err := json.Unmarshal(msg.Data(), &adv); err != nil || adv.StreamSeq == 0 {
		// Unreadable: the message is lost to us, but not silently.
		var id string
		if md, err := msg.Metadata(); err == nil {
			id = fmt.Sprintf("%s:advisory:%d", advisoryStream(f.stream), md.Sequence.Stream)
		}
		return f.store(ctx, deadLetterRecord{
			ID:      id,
			Subject: subject, Stream: f.stream, Consumer: consumer, Kind: kindOf(msg.Subject()),
			Reason:  "unreadable advisory " + msg.Subject(),
			Missing: fmt.Sprintf("the advisory does not say which message died (%v)", err),
		})
	}
	if adv.Stream != f.stream || adv.Consumer != consumer {
		f.log.Warn("advisory body disagrees with its subject; trusting the subject",
			slog.String("advisory", msg.Subject()), slog.String("body_stream", adv.Stream), slog.String("body_consumer", adv.Consumer))
	}
	kind, reason := kindOf(msg.Subject()), adv.Reason
	if kind == deadLetterMaxDeliveries {
		reason = fmt.Sprintf("max deliveries (%d) reached", adv.Deliveries)
	}
	if reason == "" {
		reason = "terminated by the consumer"
	}
	rec := deadLetterRecord{
		Subject: subject, Stream: f.stream, StreamSeq: adv.StreamSeq,
		Deliveries: adv.Deliveries, Consumer: consumer, Kind: kind, Reason: reason,
	}
	if giveUp != "" {
		rec.Missing, rec.MissingCause = giveUp, incompleteForwardFail
		return f.store(ctx, rec)
	}
	js := f.router.js
	if f.source == nil {
		s, err := js.Stream(ctx, f.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			rec.Missing = "the stream " + f.stream + " is gone"
			return f.store(ctx, rec)
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", f.stream, err)
		}
		f.source = s
	}
	orig, err := f.source.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		rec.Missing = fmt.Sprintf("the original (%s #%d) was no longer in its stream when it was dead-lettered", f.stream, adv.StreamSeq)
		return f.store(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("fetch %s #%d: %w", f.stream, adv.StreamSeq, err)
	}
	if originalSubject(orig.Subject, f.router.cfg.service) != subject {
		rec.Missing = fmt.Sprintf("%s #%d is on %q, not on the consumer's subject", f.stream, adv.StreamSeq, orig.Subject)
		return f.store(ctx, rec)
	}
	rec.Header, rec.Data = orig.Header, orig.Data
	return f.store(ctx, rec)
}

// store stores rec and logs it.
func (f *forwarder) store(ctx context.Context, rec deadLetterRecord) error {
	dup, err := f.router.storeDeadLetter(ctx, rec)
	if err != nil {
		return err
	}
	attrs := []any{
		slog.String("subject", rec.Subject), slog.Uint64("stream_seq", rec.StreamSeq),
		slog.String("consumer", rec.Consumer), slog.Uint64("deliveries", rec.Deliveries),
		slog.String("reason", rec.Reason), slog.Bool("duplicate", dup),
	}
	if rec.Missing != "" {
		f.log.Error("dead-lettered without the original payload", append(attrs, slog.String("missing", rec.Missing))...)
		return nil
	}
	f.log.Warn("dead-lettered", attrs...)
	return nil
}

// kindOf returns the dead-letter kind of an advisory subject.
func kindOf(advisorySubject string) string {
	if strings.HasPrefix(advisorySubject, advisoryMaxDeliveries) {
		return deadLetterMaxDeliveries
	}
	return deadLetterTerminated
}
