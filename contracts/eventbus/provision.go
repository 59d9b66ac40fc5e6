package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// duplicateWindow is the deduplication window of the streams the router
// creates: a Nats-Msg-Id seen within it is stored once.
const duplicateWindow = 10 * time.Minute

type streamSpec struct {
	name     string
	subjects []string
	replicas int
	maxAge   time.Duration
	desc     string
}

// ensureStream creates the stream, or adds the subjects it lacks. It never
// removes subjects or changes other settings of an existing stream, so that
// services sharing a stream do not fight over it, and it refuses a stream
// whose retention would delete terminated messages before the dead-letter
// forwarder could fetch them.
func ensureStream(ctx context.Context, js jetstream.JetStream, spec streamSpec) error {
	s, err := js.Stream(ctx, spec.name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        spec.name,
			Description: spec.desc,
			Subjects:    spec.subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    max(spec.replicas, 1),
			MaxAge:      spec.maxAge,
			Duplicates:  duplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return ensureStream(ctx, js, spec) // created meanwhile by a replica
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
	if cfg.Retention != jetstream.LimitsPolicy {
		return fmt.Errorf("eventbus: stream %s has %s retention; dead letters need limits retention", spec.name, cfg.Retention)
	}
	missing := false
	for _, subj := range spec.subjects {
		if !slices.Contains(cfg.Subjects, subj) {
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

// Advisory subjects JetStream publishes when a consumer gives up on a message.
const (
	advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	advisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
)

// advisoryStream returns the name of the stream that captures the give-up
// advisories of stream's consumers.
func advisoryStream(stream string) string { return stream + "_ADVISORIES" }

// ensureDeadLetterStreams creates the advisory stream and the DLQ stream of
// stream. Advisories are core NATS messages, lost when nobody listens, so
// a stream captures them for the forwarder.
func ensureDeadLetterStreams(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, replicas int, maxAge time.Duration) error {
	err := ensureStream(ctx, js, streamSpec{
		name:     advisoryStream(stream),
		desc:     "MAX_DELIVERIES and MSG_TERMINATED advisories of " + stream + ", read by the dead-letter forwarder",
		subjects: []string{advisoryMaxDeliveries + "." + stream + ".*", advisoryTerminated + "." + stream + ".*"},
		replicas: replicas,
		maxAge:   7 * 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	dlq := make([]string, len(subjects))
	for i, s := range subjects {
		dlq[i] = DLQSubject(s)
	}
	return ensureStream(ctx, js, streamSpec{
		name:     DLQStream(stream),
		desc:     "dead letters of " + stream,
		subjects: dlq,
		replicas: replicas,
		maxAge:   maxAge,
	})
}
