// Package eventbus is the runtime behind the code that protoc-gen-go-events
// generates: it makes a JetStream subject behave like a typed, retried,
// dead-lettered function call.
//
// # Publishing
//
// A generated PublishX function validates the event, encodes it as protojson
// with proto field names (or binary protobuf with WithBinary), sets the
// Content-Type, Nats-Msg-Id and traceparent headers and publishes it to the
// subject named in the proto. The default Nats-Msg-Id is derived from the
// event's content, so publishing the same event twice within the stream's
// duplicate window stores it once; it is safe when distinct events never
// share every field. A producer that can emit identical but distinct events
// gives each its own id with WithMsgID, which every PublishX accepts.
// Deduplication trusts that header: a message published earlier under the
// same id, whatever its content, makes JetStream drop the event (see
// Publish).
//
// # Consuming
//
// A Router runs the subscriptions of one service. Each subscription is a
// durable pull consumer filtered to one subject, worked by up to
// WithConcurrency handlers. For every message the router decodes by
// Content-Type (JSON when absent), validates, and calls the typed handler.
// The handler's error decides what happens, from the outermost layer in:
//
//  1. recover: a panic becomes a handler failure.
//  2. dead letter: a permanent error (decoding, validation, an unknown
//     content type, or one wrapped with Permanent) dead-letters the message
//     on this delivery, with the error as its reason.
//  3. hold: an error wrapped with Unavailable says the world is down, not the
//     message: the subscription stops fetching, holds the messages it has,
//     and probes with one of them at a time, backing off, until the handler
//     answers anything else; then it resumes with the held messages.
//  4. wait: an error wrapped with NotReady parks just that message, off its
//     worker, and retries it with backoff for up to Retry.MaxHold; after
//     that its NotReady answers count as handler failures.
//  5. retry: any other error is a handler failure. The message is retried
//     with NakWithDelay and exponential backoff from Retry, and
//     dead-lettered on its Retry.MaxRetries+1st failure, with the error as
//     its reason.
//  6. the handler.
//
// # Delivery promises
//
// These hold while the stream keeps the message (see Bounds) and the process
// can talk to NATS; a message is only ever acknowledged when its handler
// returned nil or its dead letter is stored.
//
//   - At least once. Handlers must be idempotent: a crash, a lost
//     acknowledgement, or a handler that outlives its delivery makes the
//     server deliver a message again, to this or another replica.
//   - The retry budget counts handler failures only. The runtime records
//     them per durable consumer and stream sequence in the key-value bucket
//     BudgetBucket(stream) (read on redeliveries only, written on failures
//     only, deleted after the final outcome), and dead-letters after
//     Retry.MaxRetries+1 failures. Holding for an outage, waiting after
//     NotReady, prefetch, drains, restarts and crashes spend none of it.
//   - Nothing waits unattended, nothing sent is lost. A subscription pulls
//     through one inbox of its own, subscribed for the whole run, and asks
//     for as many messages as it has free handlers plus a small look-ahead
//     (max(16, concurrency/2)), so that handlers do not wait on the round
//     trip to the server. Look-ahead messages wait in the inbox for a
//     handler; should the handlers be slow to take them (they have not all
//     been taken within a sixth of the ack wait), the keeper moves them off
//     the inbox, keeps them alive, and the subscription pulls nothing more
//     until the handlers have taken them. A late message, one the server
//     sends for a pull request the subscription no longer counts on (the
//     server answered more than a second after the request expired, or a
//     status such as a leader change ended the requests), is received all
//     the same and waits, kept alive, for a free handler. One keeper
//     goroutine per subscription sends in-progress acks (when a third of
//     the ack wait has passed) for every message the subscription holds,
//     has parked, has received late or is handling, so no wait, probe or
//     slow handler lets another message's ack wait run out. A parked or
//     held message holds no handler: the messages behind it flow past it.
//   - Handlers have a deadline. A handler's context ends one ack wait
//     (WithAckWait) after the call starts, and the runtime keeps the
//     delivery alive until then, so the server redelivers it no sooner
//     than half an ack wait after the context ends. The runtime tracks each
//     delivery's ack deadline: a failure that comes after it, less a margin
//     of a tenth of the ack wait (at most 1s), is dropped (outcome "stale")
//     and never naked, retried or dead-lettered; the redelivery decides. A
//     late success is still acknowledged.
//   - A dead letter is stored before its message is given up. The runtime
//     publishes the dead letter to the DLQ and waits for the DLQ stream to
//     store it, under the Nats-Msg-Id that the advisory forwarder uses too
//     (stream, sequence, consumer), and only then terminates the message.
//     When the store fails the message is not terminated but retried after
//     Retry.MaxInterval; a spent budget is recorded first, so the next
//     delivery dead-letters without calling the handler again.
//   - A crash loop ends in the DLQ. The consumer's MaxDeliver (WithMaxDeliver,
//     by default Retry.MaxRetries+1+DefaultExtraDeliveries) backs up the
//     budget for a message whose handler never finishes: it crashes the
//     process, hangs, or the process restarts on every delivery. On the
//     delivery that reaches MaxDeliver the runtime dead-letters the message
//     without calling the handler, with a reason that starts "crash loop or
//     delivery backstop". Every server delivery counts towards it, so a
//     message that is innocent can reach it only after MaxDeliver-
//     MaxRetries-1 (by default 10) deliveries that ended without an outcome
//     (restarts, drains or crashes while it was in flight, held or parked).
//     If the process dies on that last delivery too, the server's
//     MAX_DELIVERIES advisory takes the message to the forwarder.
//
// Shutdown: when Run's context ends, the router sends no more pull requests
// and keeps the inbox until the server has ended those it sent (at most
// their expiry, 200ms, and a second's grace), handling what they bring. It
// lets running handlers finish for up to the drain timeout
// (WithDrainTimeout), and gives the parked, held and late messages back
// with a Nak (a parked one keeps the rest of its delay), for another replica
// or the next run. That spends one server delivery towards MaxDeliver and
// none of the budget. Only a message the server sends after that (a pull
// request lost with the connection, or answered later than its grace) comes
// back after the ack wait, at the same cost.
//
// # Bounds
//
// What the runtime cannot promise, and what it costs:
//
//   - Power failure. nats-server writes its file store to disk every two
//     minutes by default (sync_interval). A power failure of the server's
//     machine, not a process crash, can lose what it acknowledged since the
//     last sync: published messages, acks (those messages are delivered
//     again), failure counts (those messages get more retries) and dead
//     letters (a message terminated in the same window may be gone from the
//     DLQ too, or not). Sync on every write (sync_interval: always, the
//     embedded server's sync option) closes this at the throughput cost
//     measured in the README. A replicated (R3) stream loses nothing unless
//     a majority of its servers lose power together.
//   - Operator actions. Deleting a durable consumer makes the router create
//     it again from the start of the stream: every message is handled again
//     (idempotently) and nothing is lost. Deleting or purging a stream, or
//     limits (MaxAge, MaxMsgs, MaxBytes) that remove messages, lose the
//     messages removed, also ones not handled yet or waiting for a retry.
//     Deleting the failure-count bucket resets the budgets (more retries,
//     never fewer); a count also expires after 7 days. Deleting or purging
//     dead letters loses them. Changing a consumer's AckWait or MaxDeliver
//     by hand is undone by the next provisioning.
//
// # Dead letters
//
// A subscription stores its dead letters itself, as above. The router also
// captures JetStream's MAX_DELIVERIES advisories in a stream
// (<STREAM>_ADVISORIES), and a durable forwarder fetches each original
// message by stream sequence and stores its dead letter, for a message whose
// last delivery the runtime could not settle. It does not read
// MSG_TERMINATED advisories: every Term follows a stored dead letter, and a
// stale Term must not dead-letter a message whose redelivery was applied. A
// dead letter is the original, byte for byte, on <subject>.dlq.<service>,
// stored in <STREAM>_DLQ, with Dlq-* headers that say why; a replay goes to
// <subject>.replay.<service>, which only that service's consumer reads.
// DeadLetters lists, shows, replays and purges them.
//
// An event whose contract Policy has DeadLetter false gets no dead letters:
// a message that fails for good is terminated (outcome "dropped"), and the
// forwarder acknowledges its MAX_DELIVERIES advisories without storing one.
package eventbus
