package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// A producer publishes with the generated PublishX function; a consumer
// registers a typed handler with the generated SubscribeX function and runs
// the router.
func ExampleRouter() {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	ctx, stop := context.WithCancel(context.Background())
	handled := make(chan struct{})
	r := eventbus.NewRouter(js,
		eventbus.WithService("example"),
		eventbus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	testpbv1.SubscribePing(r, func(ctx context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		fmt.Printf("%s #%d: id=%s kind=%s\n", meta.Subject, meta.StreamSeq, ev.GetId(), ev.GetDetail().GetKind())
		close(handled)
		return nil
	})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}

	_, err := testpbv1.PublishPing(ctx, js, &testpbv1.Ping{
		Id:     "ping-1",
		SentAt: timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)),
		Detail: &testpbv1.Ping_Detail{Kind: "example"},
	})
	if err != nil {
		fmt.Println(err)
	}
	<-handled
	stop()
	<-done
	// Output: eventbus.test.ping #1: id=ping-1 kind=example
}

// Handlers classify their errors: Permanent dead-letters at once,
// Unavailable holds the subscription, NotReady retries the message in place,
// and anything else is retried with backoff.
func ExamplePermanent() {
	err := eventbus.Permanent(fmt.Errorf("the owner cannot leave"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, eventbus.ErrPermanent), errors.Is(err, eventbus.ErrUnavailable))
	// Output:
	// the owner cannot leave
	// true false
}
