package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// duplicateWindow is the deduplication window of the streams the router
// creates: a Nats-Msg-Id seen within it is stored once.
const duplicateWindow = 10 * time.Minute

// minSafeMaxAge is the shortest MaxAge of an existing event or advisory
// stream that Provision accepts without a warning: a message may wait that
// long for a consumer (a stopped service, a long outage) before it is
// handled or dead-lettered.
const minSafeMaxAge = 24 * time.Hour

// Roles of the streams the router provisions, for its checks and logs.
const (
	roleEvents     = "event"
	roleAdvisories = "advisory"
	roleDLQ        = "dead-letter"
)

type streamSpec struct {
	name      string
	role      string
	subjects  []string
	replicas  int
	limits    StreamLimits
	retention jetstream.RetentionPolicy // of a stream created here
	accept    []jetstream.RetentionPolicy
	desc      string
}

// ensureStream creates the stream, or adds the subjects it lacks. It never
// removes subjects or changes other settings of an existing stream, so that
// services sharing a stream do not fight over it; it refuses an existing
// stream whose retention would delete messages before the dead-letter path
// could read them, and logs a warning for every limit of an existing stream
// that could remove a message before it is dead-lettered.
func ensureStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger, spec streamSpec) error {
	s, err := js.Stream(ctx, spec.name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        spec.name,
			Description: spec.desc,
			Subjects:    spec.subjects,
			Retention:   spec.retention,
			Storage:     jetstream.FileStorage,
			Replicas:    max(spec.replicas, 1),
			MaxAge:      spec.limits.MaxAge,
			MaxBytes:    orUnlimited(spec.limits.MaxBytes),
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			Duplicates:  duplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return ensureStream(ctx, js, log, spec) // created meanwhile by a replica
		}
		if err != nil {
			return fmt.Errorf("eventbus: create stream %s: %w", spec.name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("eventbus: stream %s: %w", spec.name, err)
	}
	cfg := s.CachedInfo().Config
	if !slices.Contains(spec.accept, cfg.Retention) {
		return fmt.Errorf("eventbus: %s stream %s has %s retention; dead letters need %v retention",
			spec.role, spec.name, cfg.Retention, spec.accept)
	}
	for _, w := range limitWarnings(cfg, spec.role) {
		log.Warn("stream limit can lose messages before they are dead-lettered",
			slog.String("stream", spec.name), slog.String("role", spec.role), slog.String("limit", w))
	}
	missing := false
	for _, subj := range spec.subjects {
		// A subject the stream already captures, literally or through a
		// wildcard, is not added again: JetStream refuses overlaps.
		if !slices.ContainsFunc(cfg.Subjects, func(p string) bool { return subjectMatches(p, subj) }) {
			cfg.Subjects = append(cfg.Subjects, subj)
			missing = true
		}
	}
	if !missing {
		return nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("eventbus: add subjects %v to stream %s: %w", spec.subjects, spec.name, err)
	}
	return nil
}

// limitWarnings says which limits of an existing stream of role could
// remove a message before it is handled or dead-lettered.
func limitWarnings(cfg jetstream.StreamConfig, role string) []string {
	var out []string
	if cfg.Discard == jetstream.DiscardOld {
		if cfg.MaxMsgs > 0 {
			out = append(out, fmt.Sprintf("max_msgs %d with discard old: when full, the oldest messages are removed, handled or not", cfg.MaxMsgs))
		}
		if cfg.MaxBytes > 0 {
			out = append(out, fmt.Sprintf("max_bytes %d with discard old: when full, the oldest messages are removed, handled or not", cfg.MaxBytes))
		}
		if cfg.MaxMsgsPerSubject > 0 {
			out = append(out, fmt.Sprintf("max_msgs_per_subject %d with discard old: the oldest messages of a subject are removed, handled or not", cfg.MaxMsgsPerSubject))
		}
	}
	if role != roleDLQ && cfg.MaxAge > 0 && cfg.MaxAge < minSafeMaxAge {
		out = append(out, fmt.Sprintf("max_age %s: a message not dead-lettered within it is removed (want at least %s)", cfg.MaxAge, minSafeMaxAge))
	}
	return out
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// Advisory subjects JetStream publishes when a consumer gives up on a message.
const (
	advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	advisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
)

// advisoryStream returns the name of the stream that captures the give-up
// advisories of stream's consumers.
func advisoryStream(stream string) string { return stream + "_ADVISORIES" }

// provisionStreams creates or updates the event stream name with subjects
// and, unless dead letters are off, its replay subjects, advisory stream
// and DLQ stream.
func (r *Router) provisionStreams(ctx context.Context, name string, subjects []string) error {
	events := streamSpec{
		name: name, role: roleEvents, subjects: subjects, replicas: r.cfg.replicas,
		limits: r.cfg.limits.events, retention: jetstream.LimitsPolicy,
		accept: []jetstream.RetentionPolicy{jetstream.LimitsPolicy},
	}
	if !r.cfg.deadLetters {
		return ensureStream(ctx, r.js, r.log, events)
	}
	for _, s := range subjects {
		events.subjects = append(events.subjects, s+replayToken+"*")
	}
	if err := ensureStream(ctx, r.js, r.log, events); err != nil {
		return err
	}
	// Advisories are core NATS messages, lost when nobody listens, so a
	// stream captures them for the forwarder. On a work queue an advisory
	// is gone once forwarded and acknowledged.
	var advSubjects []string
	for _, a := range forwardedAdvisories {
		advSubjects = append(advSubjects, a+"."+name+".*")
	}
	err := ensureStream(ctx, r.js, r.log, streamSpec{
		name: advisoryStream(name), role: roleAdvisories, subjects: advSubjects, replicas: r.cfg.replicas,
		desc:      "give-up advisories of " + name + " not forwarded yet, read by the dead-letter forwarders",
		limits:    r.cfg.limits.advisories,
		retention: jetstream.WorkQueuePolicy,
		accept:    []jetstream.RetentionPolicy{jetstream.WorkQueuePolicy, jetstream.LimitsPolicy},
	})
	if err != nil {
		return err
	}
	dlq := make([]string, len(subjects))
	for i, s := range subjects {
		dlq[i] = s + dlqToken + "*"
	}
	limits := r.cfg.limits.deadLetters
	if r.cfg.dlqMaxAge != 0 {
		limits.MaxAge = r.cfg.dlqMaxAge
	}
	err = ensureStream(ctx, r.js, r.log, streamSpec{
		name: DLQStream(name), role: roleDLQ, subjects: dlq, replicas: r.cfg.replicas,
		desc:      "dead letters of " + name + ", on <subject>.dlq.<service>",
		limits:    limits,
		retention: jetstream.LimitsPolicy,
		accept:    []jetstream.RetentionPolicy{jetstream.LimitsPolicy},
	})
	if err != nil {
		return err
	}
	r.warnLegacyDeadLetters(ctx, name, subjects)
	return nil
}

// warnLegacyDeadLetters logs the dead letters that releases before dead
// letters were per service stored on "<subject>.dlq": DeadLetters does not
// see them.
func (r *Router) warnLegacyDeadLetters(ctx context.Context, name string, subjects []string) {
	s, err := r.js.Stream(ctx, DLQStream(name))
	if err != nil {
		return
	}
	for _, subj := range subjects {
		legacy := subj + ".dlq"
		if !slices.Contains(s.CachedInfo().Config.Subjects, legacy) {
			continue
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(legacy))
		if err != nil || info.State.Subjects[legacy] == 0 {
			continue
		}
		r.log.Warn("dead letters of an earlier release are not per service and not listed; inspect or purge them with the nats CLI",
			slog.String("stream", DLQStream(name)), slog.String("subject", legacy), slog.Uint64("count", info.State.Subjects[legacy]))
	}
}
