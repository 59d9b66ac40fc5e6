package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/images"
	"github.com/activitychat/chat/test/internal/natsc"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// Names the consumer's provisioning gives the streams (contracts/eventbus).
const (
	activityStream = "ACTIVITY"
	dlqStream      = "ACTIVITY_DLQ"

	subjectCreated = "activity.created"
	subjectJoined  = "activity.member.joined"
	subjectLeft    = "activity.member.left"
)

// Network aliases of the stack's containers.
const (
	natsAlias = "nats"
	chatAlias = "chat"
)

// stackImages are the images of one run.
type stackImages struct {
	NATS, Chat, Consumer string
}

// requireImages builds (or reuses) the three images. A service without its
// Dockerfile is a missing prerequisite: the test skips, or fails in CI.
func requireImages(t *testing.T) stackImages {
	t.Helper()
	ctx := harness.Deadline(t, 6*time.Minute)
	done := harness.Step(t, "images")
	defer done()
	var imgs stackImages
	var err error
	if imgs.NATS, err = images.NATS(ctx); err != nil {
		t.Fatalf("nats-server image: %v", err)
	}
	for _, b := range []struct {
		ref   *string
		build func(context.Context) (string, error)
	}{
		{&imgs.Chat, images.Chat},
		{&imgs.Consumer, images.ChatConsumer},
	} {
		*b.ref, err = b.build(ctx)
		if errors.Is(err, images.ErrNoDockerfile) {
			harness.Require(t, err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return imgs
}

// stackConfig shapes a stack.
type stackConfig struct {
	// ClusterNodes > 0 runs a routed NATS cluster of that size instead of
	// one node; the consumer then creates R3 streams.
	ClusterNodes int
	// Consumers is the number of consumer replicas; 0 means 1.
	Consumers int
	// Consumer edits every replica's configuration.
	Consumer func(*chatc.ConsumerConfig)
	// ChatOptions are more options of the chat container.
	ChatOptions []testcontainers.ContainerCustomizer
}

// stack is NATS, the chat service and the consumer replicas on one
// labelled network, every container cleaned up (and its logs shown on
// failure) when the test ends.
type stack struct {
	Images    stackImages
	Network   *testcontainers.DockerNetwork
	NATS      *natsc.Container // one node, or nil
	Cluster   *natsc.Cluster   // or a cluster, or nil
	Chat      *chatc.Chat
	Consumers []*chatc.Consumer

	cfg stackConfig
}

// startStack starts a stack; NATS first, then the chat service, then the
// consumer replicas, which create the streams and durable consumers.
func startStack(t *testing.T, ctx context.Context, imgs stackImages, cfg stackConfig) *stack {
	t.Helper()
	s := &stack{Images: imgs, cfg: cfg}

	done := harness.Step(t, "start NATS")
	if cfg.ClusterNodes > 0 {
		cl, err := natsc.RunCluster(ctx, imgs.NATS, cfg.ClusterNodes)
		natsc.CleanupCluster(t, cl)
		if err != nil {
			t.Fatal(err)
		}
		s.Cluster, s.Network = cl, cl.Network
	} else {
		nw, err := network.New(ctx, network.WithLabels(harness.Labels()))
		testcontainers.CleanupNetwork(t, nw)
		if err != nil {
			t.Fatal(err)
		}
		s.Network = nw
		n, err := natsc.Run(ctx, imgs.NATS, network.WithNetwork([]string{natsAlias}, nw))
		harness.Cleanup(t, "nats", n)
		if err != nil {
			t.Fatal(err)
		}
		s.NATS = n
	}
	done()

	done = harness.Step(t, "start chat")
	chatOpts := append([]testcontainers.ContainerCustomizer{
		network.WithNetwork([]string{chatAlias}, s.Network),
		chatc.WithAlias(chatAlias),
	}, cfg.ChatOptions...)
	chat, err := chatc.RunChat(ctx, imgs.Chat, chatOpts...)
	harness.Cleanup(t, "chat", chat)
	if err != nil {
		t.Fatal(err)
	}
	s.Chat = chat
	done()

	done = harness.Step(t, "start consumers")
	for range max(cfg.Consumers, 1) {
		s.AddConsumer(t, ctx)
	}
	done()
	return s
}

// natsInternalURLs returns the NATS URLs as the stack's containers reach them.
func (s *stack) natsInternalURLs() string {
	if s.Cluster != nil {
		return s.Cluster.InternalURLs()
	}
	return "nats://" + natsAlias + ":4222"
}

// consumerOptions returns the options every replica and CLI run gets.
func (s *stack) consumerOptions() []testcontainers.ContainerCustomizer {
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork(nil, s.Network),
		chatc.WithNATS(s.natsInternalURLs()),
		chatc.WithChat(s.Chat.InternalURL()),
	}
	if s.Cluster != nil {
		opts = append(opts, chatc.WithConfig(func(c *chatc.ConsumerConfig) { c.Messaging.Replicas = 3 }))
	}
	if s.cfg.Consumer != nil {
		opts = append(opts, chatc.WithConfig(s.cfg.Consumer))
	}
	return opts
}

// AddConsumer starts one more consumer replica.
func (s *stack) AddConsumer(t *testing.T, ctx context.Context) *chatc.Consumer {
	t.Helper()
	name := fmt.Sprintf("chatconsumer-%d", len(s.Consumers)+1)
	c, err := chatc.RunConsumer(ctx, s.Images.Consumer, s.consumerOptions()...)
	harness.Cleanup(t, name, c)
	if err != nil {
		t.Fatal(err)
	}
	s.Consumers = append(s.Consumers, c)
	return c
}

// CLI runs `chatconsumer <args>` in a one-off container on the stack's
// network and returns its result; a non-zero exit fails t.
func (s *stack) CLI(t *testing.T, ctx context.Context, args ...string) chatc.CLIResult {
	t.Helper()
	res, err := chatc.RunConsumerCLI(ctx, s.Images.Consumer, args, time.Minute, s.consumerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chatconsumer %v: exit %d\n%s%s", args, res.ExitCode, clip(res.Stdout, 1500), clip(res.Stderr, 1500))
	if res.ExitCode != 0 {
		t.Fatalf("chatconsumer %v exited with %d", args, res.ExitCode)
	}
	return res
}

// Connect connects a NATS client from the host.
func (s *stack) Connect(t *testing.T, ctx context.Context) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	var nc *nats.Conn
	var err error
	if s.Cluster != nil {
		nc, err = s.Cluster.Connect(ctx)
	} else {
		nc, err = s.NATS.Connect(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// ChatClient returns a Connect client of the chat service from the host.
func (s *stack) ChatClient(t *testing.T, ctx context.Context) chatv1connect.ChatServiceClient {
	t.Helper()
	cli, err := s.Chat.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// clip shortens s to about n bytes for a log.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n... (%d more bytes)\n", len(s)-n)
}
