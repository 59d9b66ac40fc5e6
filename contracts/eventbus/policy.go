package eventbus

// Policy is the delivery policy an event contract declares in its proto, in
// the policy field of the (eventchat.options.v1.event) option. Generated code
// declares one per event with such a field, for example
// activityv1.ActivityCreatedPolicy, with every value resolved: the fields the
// proto leaves out hold DefaultRetry's values.
//
// A Policy is a SubscribeOption. The generated SubscribeX function applies
// the event's policy before the options its caller passes, so the order of
// precedence, lowest first, is: the eventbus defaults, the router's options
// (WithRetry given to NewRouter), the contract's Policy, and the options
// given to SubscribeX or to the generated RegisterX. A deployment that must
// differ from the contract passes its own WithRetry to RegisterX.
type Policy struct {
	// Retry is the event's retry policy: how often and how late a failed
	// message is retried, and how long a NotReady message is held.
	Retry Retry
	// DeadLetter reports whether a message that fails for good is sent to
	// the dead-letter queue. When false, such a message is terminated
	// without a dead letter (handled outcome "dropped") and stays only in
	// its stream, and the dead-letter forwarder records none for it either.
	DeadLetter bool
	// OrderingKey names the field of the event, by its proto name, whose
	// value orders handling: events with the same value are meant to be
	// handled one after another. Empty means no ordering key. The generator
	// checks that the field exists and is a singular string or integer.
	// The runtime does not enforce it yet: events with the same key may be
	// handled concurrently and out of order.
	OrderingKey string
}

// applySubscribe sets the subscription's retry policy and records the
// contract's dead-letter choice and ordering key for the runtime.
func (p Policy) applySubscribe(c *subConfig) {
	c.retry = p.Retry.orDefault()
	c.noDeadLetter = !p.DeadLetter
	c.orderingKey = p.OrderingKey
}
