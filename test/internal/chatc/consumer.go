package chatc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/activitychat/chat/test/internal/harness"
)

// Defaults of the consumer container.
const (
	// MetricsPort serves /metrics, /healthz and /readyz in the container,
	// unless it runs in the host's network.
	MetricsPort = 9101
	// ConsumerConfigPath is where RunConsumer writes the configuration,
	// beside the image's own /etc/chatconsumer/consumer.yaml.
	ConsumerConfigPath = "/etc/chatconsumer/e2e.yaml"
)

// ConsumerArgs turns the configuration path and a command's arguments into
// the container's command line: "-f PATH" runs the consumer (RunConsumer,
// no args), "dlq list -f PATH" a CLI command (RunConsumerCLI): the
// chatconsumer command line takes a command's flags after the command.
func ConsumerArgs(configPath string, args ...string) []string {
	return append(append([]string(nil), args...), "-f", configPath)
}

// Consumer is a running chat consumer.
type Consumer struct {
	*testcontainers.DockerContainer
	// Config is the configuration the consumer was started with.
	Config ConsumerConfig
	port   string
}

// ConsumerOption configures RunConsumer and RunConsumerCLI. It is a
// testcontainers.ContainerCustomizer, so it mixes with testcontainers' own
// options.
type ConsumerOption func(*consumerOptions)

type consumerOptions struct {
	cfg         ConsumerConfig
	hostNetwork bool
	edits       []func(*ConsumerConfig)
}

// Customize implements testcontainers.ContainerCustomizer; RunConsumer
// applies the option itself.
func (ConsumerOption) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithNATS sets the NATS servers the consumer connects to, comma-separated,
// as the consumer's container reaches them (for example
// natsc.Cluster.InternalURLs).
func WithNATS(urls string) ConsumerOption {
	return func(o *consumerOptions) { o.cfg.Nats.Url = urls }
}

// WithChat sets the chat service's base URL as the consumer's container
// reaches it (Chat.InternalURL).
func WithChat(endpoint string) ConsumerOption {
	return func(o *consumerOptions) { o.cfg.ChatRpc.Endpoint = endpoint }
}

// WithConfig edits the configuration after the defaults and the other
// options, for example to shorten the retry policy.
func WithConfig(edit func(*ConsumerConfig)) ConsumerOption {
	return func(o *consumerOptions) { o.edits = append(o.edits, edit) }
}

// WithConsumerHostNetwork runs the consumer in the host's network with its
// metrics on 127.0.0.1:metricsPort, which must be free. It then reaches NATS
// and the chat service only on loopback.
func WithConsumerHostNetwork(metricsPort int) ConsumerOption {
	return func(o *consumerOptions) {
		o.hostNetwork = true
		o.cfg.Messaging.MetricsListenOn = "127.0.0.1:" + strconv.Itoa(metricsPort)
	}
}

// DefaultConsumerConfig is the configuration RunConsumer starts from:
// production mode, the suite's token, metrics on MetricsPort and a retry
// policy short enough for tests.
func DefaultConsumerConfig() ConsumerConfig {
	on := true
	return ConsumerConfig{
		Name:    "chat.consumer",
		Mode:    "prod",
		Log:     &LogConf{Level: "info"},
		ChatRpc: ChatRpc{Token: Token, Timeout: Duration(5 * time.Second)},
		Messaging: Messaging{
			ServiceName:     "chat.consumer",
			EnableMetrics:   &on,
			MetricsListenOn: "0.0.0.0:" + strconv.Itoa(MetricsPort),
			Retry: &Retry{
				MaxRetries:      3,
				InitialInterval: Duration(100 * time.Millisecond),
				MaxInterval:     Duration(time.Second),
				Multiplier:      2,
			},
		},
	}
}

func consumerRequest(opts []testcontainers.ContainerCustomizer) (consumerOptions, []byte, []testcontainers.ContainerCustomizer, error) {
	o := consumerOptions{cfg: DefaultConsumerConfig()}
	var rest []testcontainers.ContainerCustomizer
	for _, opt := range opts {
		if f, ok := opt.(ConsumerOption); ok {
			f(&o)
			continue
		}
		rest = append(rest, opt)
	}
	for _, edit := range o.edits {
		edit(&o.cfg)
	}
	if o.cfg.Nats.Url == "" || o.cfg.ChatRpc.Endpoint == "" {
		return o, nil, nil, fmt.Errorf("consumer needs WithNATS and WithChat (got %q and %q)", o.cfg.Nats.Url, o.cfg.ChatRpc.Endpoint)
	}
	cfg, err := json.MarshalIndent(o.cfg, "", "  ")
	if err != nil {
		return o, nil, nil, err
	}
	base := []testcontainers.ContainerCustomizer{
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader: bytes.NewReader(cfg), ContainerFilePath: ConsumerConfigPath, FileMode: 0o644,
		}),
		harness.WithLabels(),
	}
	if o.hostNetwork {
		base = append(base, harness.WithHostNetwork())
	}
	return o, cfg, append(base, rest...), nil
}

// RunConsumer starts the consumer from image and waits until its /readyz
// answers 200. It needs WithNATS and WithChat, and usually
// network.WithNetwork to reach both. On error the returned container, when
// not nil, still has to be terminated.
func RunConsumer(ctx context.Context, image string, opts ...testcontainers.ContainerCustomizer) (*Consumer, error) {
	o, _, reqOpts, err := consumerRequest(opts)
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(o.cfg.Messaging.MetricsListenOn, ":")
	portSpec := port + "/tcp"

	moduleOpts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(ConsumerArgs(ConsumerConfigPath)...),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForHTTP("/readyz").WithPort(portSpec),
		),
	}
	if !o.hostNetwork {
		moduleOpts = append(moduleOpts, harness.WithLoopbackPorts(portSpec))
	}
	ctr, err := testcontainers.Run(ctx, image, append(moduleOpts, reqOpts...)...)
	var c *Consumer
	if ctr != nil {
		c = &Consumer{DockerContainer: ctr, Config: o.cfg, port: portSpec}
	}
	if err != nil {
		return c, fmt.Errorf("run chatconsumer: %w", err)
	}
	return c, nil
}

// MetricsURL returns the base URL of the consumer's /metrics, /healthz and
// /readyz on the host, reading the mapped port afresh.
func (c *Consumer) MetricsURL(ctx context.Context) (string, error) {
	host, err := c.Host(ctx)
	if err != nil {
		return "", err
	}
	p, err := c.MappedPort(ctx, c.port)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("http://%s:%s", host, p.Port()), nil
}

// CLIResult is the outcome of a consumer CLI command.
type CLIResult struct {
	// ExitCode is the command's exit status.
	ExitCode int
	// Stdout is the command's output, Stderr its log and errors.
	Stdout, Stderr string
}

// RunConsumerCLI runs a command of the consumer's CLI, for example
// []string{"dlq", "list"}, in a one-off container of image with the same
// configuration options as RunConsumer, waits until it exits (up to
// timeout) and returns its exit code and output. The container is removed.
func RunConsumerCLI(ctx context.Context, image string, args []string, timeout time.Duration, opts ...testcontainers.ContainerCustomizer) (CLIResult, error) {
	_, _, reqOpts, err := consumerRequest(opts)
	if err != nil {
		return CLIResult{}, err
	}
	moduleOpts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(ConsumerArgs(ConsumerConfigPath, args...)...),
		testcontainers.WithWaitStrategyAndDeadline(timeout, wait.ForExit()),
	}
	ctr, err := testcontainers.Run(ctx, image, append(moduleOpts, reqOpts...)...)
	defer func() {
		if ctr != nil {
			_ = ctr.Terminate(context.Background())
		}
	}()
	if err != nil {
		var res CLIResult
		if ctr != nil {
			res.Stdout, res.Stderr, _ = harness.Output(ctx, ctr)
		}
		return res, fmt.Errorf("chatconsumer %s: %w\n%s%s", strings.Join(args, " "), err, res.Stdout, res.Stderr)
	}
	st, err := ctr.State(ctx)
	if err != nil {
		return CLIResult{}, err
	}
	res := CLIResult{ExitCode: st.ExitCode}
	res.Stdout, res.Stderr, err = harness.Output(ctx, ctr)
	return res, err
}
