// Package chatc runs the chat service and the chat consumer in containers
// for the end-to-end tests, in the style of the testcontainers-go modules.
//
// The images are the ones the images package builds: one static binary
// FROM scratch each, so every wait is a request from the host, never a shell
// inside the container. Both services read a configuration file that Run
// writes into the container; see ChatConfig and ConsumerConfig.
package chatc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/test/internal/harness"
)

// Defaults of the chat container.
const (
	// ChatPort is the port the chat service serves Connect on in its
	// container, unless it runs in the host's network.
	ChatPort = 8080
	// ChatConfigPath is where RunChat writes the chat service's
	// configuration, beside the image's own /etc/chat/chat.yaml.
	ChatConfigPath = "/etc/chat/e2e.yaml"
	// ChatDataDir is the chat service's SQLite directory in the container.
	ChatDataDir = "/data"
	// Token is the bearer token of the suite's chat service.
	Token = "e2e-chat-token"
)

// Chat is a running chat service.
type Chat struct {
	*testcontainers.DockerContainer
	// Config is the configuration the service was started with.
	Config ChatConfig
	// Alias is the service's host name on its network, "" in the host's
	// network.
	Alias string
	port  string
}

// ChatOption configures RunChat. It is a testcontainers.ContainerCustomizer,
// so it mixes with testcontainers' own options.
type ChatOption func(*chatOptions)

type chatOptions struct {
	cfg         ChatConfig
	alias       string
	hostNetwork bool
}

// Customize implements testcontainers.ContainerCustomizer; RunChat applies
// the option itself.
func (ChatOption) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithPostgres stores the chat service's data in PostgreSQL at dsn instead
// of SQLite.
func WithPostgres(dsn string) ChatOption {
	return func(o *chatOptions) { o.cfg.Database = ChatDatabase{Driver: "postgres", DSN: dsn} }
}

// WithAlias sets the chat service's host name on the networks it joins
// (through network.WithNetwork, whose aliases this replaces when set later).
func WithAlias(alias string) ChatOption {
	return func(o *chatOptions) { o.alias = alias }
}

// WithChatHostNetwork runs the chat service in the host's network, serving
// on 127.0.0.1:port; port must be free (harness.FreePort). This is how the
// service reaches the host's PostgreSQL on loopback.
func WithChatHostNetwork(port int) ChatOption {
	return func(o *chatOptions) {
		o.hostNetwork = true
		o.cfg.ListenOn = "127.0.0.1:" + strconv.Itoa(port)
	}
}

// RunChat starts the chat service from image with SQLite in ChatDataDir (or
// WithPostgres), the bearer token Token, Connect published on 127.0.0.1, and
// waits until it answers Connect calls. On error the returned container,
// when not nil, still has to be terminated.
func RunChat(ctx context.Context, image string, opts ...testcontainers.ContainerCustomizer) (*Chat, error) {
	o := chatOptions{cfg: ChatConfig{
		Name:     "chat.rpc",
		ListenOn: "0.0.0.0:" + strconv.Itoa(ChatPort),
		Mode:     "prod",
		Database: ChatDatabase{Driver: "sqlite", DSN: ChatDataDir + "/chat.db"},
		Auth:     ChatAuth{Tokens: []string{Token}},
		Log:      &LogConf{Level: "info", Encoding: "plain"},
	}}
	var rest []testcontainers.ContainerCustomizer
	for _, opt := range opts {
		if f, ok := opt.(ChatOption); ok {
			f(&o)
			continue
		}
		rest = append(rest, opt)
	}
	cfg, err := json.MarshalIndent(o.cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(o.cfg.ListenOn, ":")
	portSpec := port + "/tcp"

	moduleOpts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd("-f", ChatConfigPath),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader: bytes.NewReader(cfg), ContainerFilePath: ChatConfigPath, FileMode: 0o644,
		}),
		harness.WithLabels(),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForListeningPort(portSpec).SkipInternalCheck(),
			wait.ForHTTP("/readyz").WithPort(portSpec),
		),
	}
	if o.hostNetwork {
		moduleOpts = append(moduleOpts, harness.WithHostNetwork())
	} else {
		moduleOpts = append(moduleOpts, harness.WithLoopbackPorts(portSpec))
	}
	moduleOpts = append(moduleOpts, rest...)
	if o.alias != "" {
		moduleOpts = append(moduleOpts, withAliases(o.alias))
	}

	ctr, err := testcontainers.Run(ctx, image, moduleOpts...)
	var c *Chat
	if ctr != nil {
		c = &Chat{DockerContainer: ctr, Config: o.cfg, Alias: o.alias, port: portSpec}
	}
	if err != nil {
		return c, fmt.Errorf("run chat: %w", err)
	}
	return c, nil
}

// withAliases gives the container alias on every network it joins.
func withAliases(alias string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if req.NetworkAliases == nil {
			req.NetworkAliases = map[string][]string{}
		}
		for _, n := range req.Networks {
			req.NetworkAliases[n] = []string{alias}
		}
		return nil
	}
}

// URL returns the service's base URL on the host, reading the mapped port
// afresh: it changes when the container starts again.
func (c *Chat) URL(ctx context.Context) (string, error) {
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

// InternalURL returns the base URL other containers use: on the shared
// network by alias, or on loopback when the service runs in the host's
// network (then only containers in the host's network reach it).
func (c *Chat) InternalURL() string {
	if c.Alias == "" {
		return "http://" + c.Config.ListenOn
	}
	_, port, _ := strings.Cut(c.Config.ListenOn, ":")
	return "http://" + c.Alias + ":" + port
}

// Client returns a Connect client of the service from the host, with the
// bearer token. Its URL is read once: after a restart, get a new client.
func (c *Chat) Client(ctx context.Context) (chatv1connect.ChatServiceClient, error) {
	u, err := c.URL(ctx)
	if err != nil {
		return nil, err
	}
	return NewClient(u, Token), nil
}

// NewClient returns a Connect client of the chat service at baseURL whose
// calls carry token as a bearer token.
func NewClient(baseURL, token string) chatv1connect.ChatServiceClient {
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	})
	hc := &http.Client{Timeout: 30 * time.Second}
	return chatv1connect.NewChatServiceClient(hc, baseURL, connect.WithInterceptors(auth))
}
