package eventbus

import "github.com/nats-io/nats.go/jetstream"

// withReplayFilter adds the service's replay subject of s's subject to the
// consumer's filters, so that a replayed dead letter reaches this consumer
// and no other service's. Handlers see the original subject in
// Meta.Subject. Without dead letters there is nothing to replay.
func (s *subscription) withReplayFilter(cfg jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	if !s.router.cfg.deadLetters {
		return cfg
	}
	cfg.FilterSubjects = []string{cfg.FilterSubject, ReplaySubject(s.subject, s.router.cfg.service)}
	cfg.FilterSubject = ""
	return cfg
}
