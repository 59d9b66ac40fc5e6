// Package natsc runs nats-server with JetStream in containers for the
// end-to-end tests, in the style of the testcontainers-go modules: Run for
// one node, RunCluster for a routed cluster.
//
// The image is the one images.NATS builds: nats-server FROM scratch, so the
// waits are HTTP and port checks from the host, never a shell inside.
package natsc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/activitychat/chat/test/internal/harness"
)

// Container ports of nats-server.
const (
	ClientPort  = "4222/tcp"
	ClusterPort = "6222/tcp"
	MonitorPort = "8222/tcp"
)

// StoreDir is where JetStream stores its data inside the container. It lives
// in the container's file system, so it survives a stop and a start.
const StoreDir = "/data"

// Container is a running nats-server.
type Container struct {
	*testcontainers.DockerContainer
	// ServerName is the server's name (--server_name), "" when not set.
	ServerName string
	// Alias is the node's host name on its cluster network, "" for a node
	// that is in no cluster.
	Alias string
}

// Option configures Run. It is a testcontainers.ContainerCustomizer, so it
// mixes with testcontainers' own options.
type Option func(*options)

type options struct {
	serverName string
	args       []string
}

// Customize implements testcontainers.ContainerCustomizer; Run applies the
// option itself.
func (Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithServerName sets the server's name (--server_name), which JetStream
// reports as a stream's leader.
func WithServerName(name string) Option {
	return func(o *options) { o.serverName = name }
}

// WithArgs appends command line arguments of nats-server.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// Run starts nats-server from image with JetStream enabled (-js, store in
// StoreDir, monitoring on 8222), its client and monitoring ports published
// on 127.0.0.1, and waits until JetStream is enabled. It labels the
// container for the harness' sweeps. On error the returned container, when
// not nil, still has to be terminated: register the cleanup before checking
// the error.
func Run(ctx context.Context, image string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	var o options
	var rest []testcontainers.ContainerCustomizer
	for _, opt := range opts {
		if f, ok := opt.(Option); ok {
			f(&o)
			continue
		}
		rest = append(rest, opt)
	}

	args := []string{"-js", "-sd", StoreDir, "-m", "8222"}
	if o.serverName != "" {
		args = append(args, "--server_name", o.serverName)
	}
	args = append(args, o.args...)

	moduleOpts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(args...),
		harness.WithLoopbackPorts(ClientPort, MonitorPort),
		harness.WithLabels(),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForListeningPort(ClientPort).SkipInternalCheck(),
			wait.ForHTTP("/healthz?js-enabled-only=true").WithPort(MonitorPort),
		),
	}
	ctr, err := testcontainers.Run(ctx, image, append(moduleOpts, rest...)...)
	var c *Container
	if ctr != nil {
		c = &Container{DockerContainer: ctr, ServerName: o.serverName}
	}
	if err != nil {
		return c, fmt.Errorf("run nats-server: %w", err)
	}
	return c, nil
}

// ClientURL returns the nats:// URL of the server's client port on the host.
// It reads the mapped port on each call, since it changes when the container
// starts again.
func (c *Container) ClientURL(ctx context.Context) (string, error) {
	return c.url(ctx, "nats", ClientPort)
}

// MonitorURL returns the http:// URL of the server's monitoring port on the
// host, read afresh on each call.
func (c *Container) MonitorURL(ctx context.Context) (string, error) {
	return c.url(ctx, "http", MonitorPort)
}

func (c *Container) url(ctx context.Context, scheme, port string) (string, error) {
	host, err := c.Host(ctx)
	if err != nil {
		return "", err
	}
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s://%s:%s", scheme, host, p.Port()), nil
}

// Connect connects a NATS client from the host to the server. The URL is
// read once: after a restart of the container, connect again.
func (c *Container) Connect(ctx context.Context, opts ...nats.Option) (*nats.Conn, error) {
	u, err := c.ClientURL(ctx)
	if err != nil {
		return nil, err
	}
	return nats.Connect(u, append([]nats.Option{nats.Name("e2e")}, opts...)...)
}

// Healthy reports whether the server's /healthz answers 200: JetStream is
// enabled and, in a cluster, current with the meta leader and all its
// streams and consumers. The error says why not.
func (c *Container) Healthy(ctx context.Context) error {
	u, err := c.MonitorURL(ctx)
	if err != nil {
		return err
	}
	body, status, err := get(ctx, u+"/healthz")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s /healthz: %d %s", c.name(), status, strings.TrimSpace(body))
	}
	return nil
}

func (c *Container) name() string {
	if c.ServerName != "" {
		return c.ServerName
	}
	return fmt.Sprintf("nats-server %.12s", c.GetContainerID())
}
