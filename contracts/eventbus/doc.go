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
// durable pull consumer filtered to one subject. For every message the router
// decodes by Content-Type (JSON when absent), validates, and calls the typed
// handler. The handler's error decides what happens, from the outermost
// layer in:
//
//  1. recover: a panic becomes a retryable error.
//  2. dead letter: a permanent error (decoding, validation, an unknown
//     content type, or one wrapped with Permanent) terminates the message
//     with its reason; JetStream's MSG_TERMINATED advisory sends it to the
//     dead-letter queue.
//  3. hold: an error wrapped with Unavailable says the world is down, not the
//     message: the subscription stops fetching, keeps the messages it holds
//     alive with in-progress acks, and probes with one of them until the
//     handler stops saying Unavailable. Held messages spend no delivery;
//     messages the server had already sent to the pull request that is
//     given up when the subscription stops are redelivered once, after the
//     ack wait, when it resumes. An error wrapped with NotReady holds just
//     that message, retrying it in place with backoff for up to
//     Retry.MaxHold.
//  4. retry: any other error is retried with NakWithDelay and exponential
//     backoff from Retry; the last allowed delivery is terminated instead,
//     with the error as its reason.
//  5. the handler.
//
// # Dead letters
//
// JetStream publishes MAX_DELIVERIES and MSG_TERMINATED advisories as core
// NATS messages. The router captures them in a stream (<STREAM>_ADVISORIES),
// and a durable forwarder fetches each original message by stream sequence
// and republishes it byte for byte to <subject>.dlq, stored in <STREAM>_DLQ,
// with Dlq-* headers that say why. DeadLetters lists, shows, replays and
// purges them.
package eventbus
