package eventbus

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pulledMsg is a JetStream message that arrived on a subscription's pull
// inbox: jetstream.Msg over the core *nats.Msg. nats.go exports no way to
// make a jetstream.Msg from a *nats.Msg, so this does what its own message
// type does: the metadata comes from the reply subject (parsed by nats.go's
// Msg.Metadata), and acknowledgements are published to it. Like nats.go's,
// it refuses a second final acknowledgement (ErrMsgAlreadyAckd).
type pulledMsg struct {
	msg   *nats.Msg
	nc    *nats.Conn
	acked atomic.Bool
}

var _ jetstream.Msg = (*pulledMsg)(nil)

// Acknowledgement bodies, as the JetStream server reads them.
var (
	ackAck      = []byte("+ACK")
	ackNak      = []byte("-NAK")
	ackProgress = []byte("+WPI")
	ackTerm     = []byte("+TERM")
)

// Metadata returns the delivery's metadata, from its reply subject.
func (m *pulledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	out := &jetstream.MsgMetadata{}
	if err := m.metadata(out); err != nil {
		return nil, err
	}
	return out, nil
}

// metadata fills out with the delivery's metadata.
func (m *pulledMsg) metadata(out *jetstream.MsgMetadata) error {
	md, err := m.msg.Metadata()
	if err != nil {
		return err
	}
	*out = jetstream.MsgMetadata{
		NumDelivered: md.NumDelivered,
		NumPending:   md.NumPending,
		Timestamp:    md.Timestamp,
		Stream:       md.Stream,
		Consumer:     md.Consumer,
		Domain:       md.Domain,
	}
	out.Sequence.Stream = md.Sequence.Stream
	out.Sequence.Consumer = md.Sequence.Consumer
	return nil
}

func (m *pulledMsg) Data() []byte         { return m.msg.Data }
func (m *pulledMsg) Headers() nats.Header { return m.msg.Header }
func (m *pulledMsg) Subject() string      { return m.msg.Subject }
func (m *pulledMsg) Reply() string        { return m.msg.Reply }
func (m *pulledMsg) Ack() error           { return m.settle(ackAck) }
func (m *pulledMsg) Nak() error           { return m.settle(ackNak) }
func (m *pulledMsg) Term() error          { return m.settle(ackTerm) }
func (m *pulledMsg) InProgress() error    { return m.send(ackProgress) }
func (m *pulledMsg) TermWithReason(reason string) error {
	if reason == "" {
		return m.Term()
	}
	return m.settle(append(append(append([]byte(nil), ackTerm...), ' '), reason...))
}

// NakWithDelay asks for a redelivery after delay.
func (m *pulledMsg) NakWithDelay(delay time.Duration) error {
	if delay <= 0 {
		return m.Nak()
	}
	body := append(append([]byte(nil), ackNak...), ` {"delay": `...)
	body = strconv.AppendInt(body, delay.Nanoseconds(), 10)
	return m.settle(append(body, '}'))
}

// DoubleAck acknowledges and waits for the server to confirm.
func (m *pulledMsg) DoubleAck(ctx context.Context) error {
	if m.acked.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if _, err := m.nc.RequestWithContext(ctx, m.msg.Reply, ackAck); err != nil {
		return err
	}
	m.acked.Store(true)
	return nil
}

// settle sends a final acknowledgement, once.
func (m *pulledMsg) settle(body []byte) error {
	if m.acked.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if err := m.send(body); err != nil {
		return err
	}
	m.acked.Store(true)
	return nil
}

// send publishes body to the reply subject, unless the message is settled.
func (m *pulledMsg) send(body []byte) error {
	if m.acked.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if m.msg.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	return m.nc.Publish(m.msg.Reply, body)
}
