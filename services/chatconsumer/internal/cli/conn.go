package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
)

// defaultNATSURL is the URL of the dev config's embedded server.
const defaultNATSURL = "nats://127.0.0.1:4222"

// connFlags are the flags that say how a tool connects to NATS.
type connFlags struct {
	file string
	url  string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "f", "", "read the NATS connection from the configuration `file`")
	fs.StringVar(&c.url, "nats", "", "the NATS `url` (overrides -f)")
}

// toolConn is a tool's connection to NATS.
type toolConn struct {
	cfg *config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

// connect connects as c says: the configuration file's NATS (the embedded
// server's address for a dev config), then --nats, $NATS_URL or the dev
// default.
func (c *connFlags) connect() (*toolConn, error) {
	var cfg *config.Config
	if c.file != "" {
		var err error
		if cfg, err = config.Load(c.file); err != nil {
			return nil, err
		}
	} else {
		d := config.Default()
		cfg = &d
	}
	url := c.url
	if url == "" && c.file != "" {
		url = cfg.NatsURL()
	}
	if url == "" {
		url = os.Getenv("NATS_URL")
	}
	if url == "" {
		url = defaultNATSURL
	}
	nc, err := app.ConnectNATS(url, cfg.Name+"-cli", cfg.Nats, nil)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &toolConn{cfg: cfg, nc: nc, js: js}, nil
}

func (t *toolConn) close() {
	_ = t.nc.Drain()
}

// ensureStream creates the event streams, their consumers and dead-letter
// plumbing exactly as the consumer would, when a stream of
// activityv1.ActivityEvents does not exist yet, so that events published
// before the consumer's first start are kept. Existing streams are left
// alone.
func (t *toolConn) ensureStream(ctx context.Context) error {
	missing := false
	for _, stream := range activityv1.ActivityEvents.Streams() {
		_, err := t.js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = true
			continue
		}
		if err != nil {
			return err
		}
	}
	if !missing {
		return nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := handlers.New(nil, handlers.Notices(t.cfg.Notices), quiet)
	return app.NewRouter(t.js, t.cfg.Messaging, h, nil, quiet).Provision(ctx)
}

// deadLetters opens the dead letters of stream, one of
// activityv1.ActivityEvents' streams, of the configured service
// (Messaging.ServiceName): other services' stay out of sight.
func (t *toolConn) deadLetters(ctx context.Context, stream string) (*eventbus.DeadLetters, error) {
	dl, err := eventbus.OpenDeadLetters(ctx, t.js, stream, t.cfg.Messaging.ServiceName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, errors.New("no dead-letter stream " + eventbus.DLQStream(stream) + " yet: start the consumer once to create it")
	}
	return dl, err
}

// eventStream returns the stream that --stream names, which may be left
// out when the events have one stream.
func eventStream(name string) (string, error) {
	streams := activityv1.ActivityEvents.Streams()
	switch {
	case name == "" && len(streams) == 1:
		return streams[0], nil
	case name == "":
		return "", usageErrorf("--stream is required: the events are stored in %s", strings.Join(streams, ", "))
	case !slices.Contains(streams, name):
		return "", usageErrorf("--stream: no event is stored in %q: want one of %s", name, strings.Join(streams, ", "))
	}
	return name, nil
}
