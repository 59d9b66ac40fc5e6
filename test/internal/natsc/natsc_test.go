package natsc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/images"
	"github.com/activitychat/chat/test/internal/natsc"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func natsImage(t *testing.T) string {
	t.Helper()
	ctx := harness.Deadline(t, 5*time.Minute)
	img, err := images.NATS(ctx)
	if err != nil {
		t.Fatalf("build the nats-server image: %v", err)
	}
	return img
}

// TestRun starts one node, stores messages, restarts the container and
// finds them again at the port it is published on after the restart.
func TestRun(t *testing.T) {
	img := natsImage(t)
	ctx := harness.Deadline(t, 2*time.Minute)

	done := harness.Step(t, "start single node")
	ctr, err := natsc.Run(ctx, img)
	harness.Cleanup(t, "nats", ctr)
	if err != nil {
		t.Fatal(err)
	}
	done()

	const n = 50
	publish := func(from, to int) {
		t.Helper()
		nc, err := ctr.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: "SINGLE", Subjects: []string{"single.>"}, Storage: jetstream.FileStorage,
		}); err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			msg := nats.NewMsg("single.event")
			msg.Header.Set(nats.MsgIdHdr, strconv.Itoa(i))
			msg.Data = []byte(strconv.Itoa(i))
			if _, _, err := natsc.PublishRetry(ctx, js, msg, 2*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() uint64 {
		t.Helper()
		nc, err := ctr.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		s, err := js.Stream(ctx, "SINGLE")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	publish(0, n)
	before, _ := ctr.ClientURL(ctx)

	done = harness.Step(t, "stop and start single node")
	timeout := 5 * time.Second
	if err := ctr.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if err := ctr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done()
	after, _ := ctr.ClientURL(ctx)
	t.Logf("client URL before the restart %s, after %s", before, after)

	publish(n, 2*n) // repeats of ids < n would be deduplicated; these are new
	if got := count(); got != 2*n {
		t.Fatalf("stream holds %d messages after the restart, want %d", got, 2*n)
	}
}

// TestClusterStreamLeaderKilled is the foundation of scenario 6: a 3-node
// cluster with an R3 stream loses its stream leader to SIGKILL while a
// publisher keeps publishing, with retries and Nats-Msg-Id. Every message is
// stored exactly once, and the killed node, started again, catches up.
func TestClusterStreamLeaderKilled(t *testing.T) {
	img := natsImage(t)
	ctx := harness.Deadline(t, 4*time.Minute)

	done := harness.Step(t, "start 3-node cluster")
	cl, err := natsc.RunCluster(ctx, img, 3)
	natsc.CleanupCluster(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	done()

	nc, err := cl.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const stream = "FAILOVER"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       stream,
		Subjects:   []string{"failover.>"},
		Storage:    jetstream.FileStorage,
		Replicas:   3,
		Duplicates: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}

	const total = 3000
	var published atomic.Int64
	var retried atomic.Int64
	var maxStall atomic.Int64 // the longest a message took to be acknowledged, in ns
	pubErr := make(chan error, 1)
	pubDone := harness.Step(t, fmt.Sprintf("publish %d messages across the leader's death", total))
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		for i := range total {
			msg := nats.NewMsg("failover.event")
			msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("msg-%05d", i))
			msg.Data = []byte(strconv.Itoa(i))
			start := time.Now()
			_, attempts, err := natsc.PublishRetry(pctx, js, msg, 2*time.Second)
			if err != nil {
				pubErr <- err
				return
			}
			if d := int64(time.Since(start)); d > maxStall.Load() {
				maxStall.Store(d)
			}
			retried.Add(int64(attempts - 1))
			published.Add(1)
		}
		pubErr <- nil
	}()

	// Kill the stream leader once a third of the messages are in.
	for published.Load() < total/3 {
		select {
		case err := <-pubErr:
			t.Fatalf("publisher stopped before the kill: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	var info *jetstream.StreamInfo
	if err := natsc.Retry(ctx, 5*time.Second, func(ctx context.Context) error {
		var err error
		info, err = s.Info(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	leader := cl.Node(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("stream leader %q is no node of the cluster", info.Cluster.Leader)
	}
	killedAt := published.Load()
	if err := harness.Kill(ctx, leader, "KILL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed stream leader %s with SIGKILL after %d of %d messages", leader.ServerName, killedAt, total)

	if err := <-pubErr; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	pubDone()
	t.Logf("published %d messages, %d retried attempts, longest wait for one acknowledgement %s",
		published.Load(), retried.Load(), time.Duration(maxStall.Load()).Round(time.Millisecond))

	// A new leader took over, elected by the two survivors.
	if err := natsc.Retry(ctx, 5*time.Second, func(ctx context.Context) error {
		info, err = s.Info(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == "" || info.Cluster.Leader == leader.ServerName {
		t.Fatalf("stream leader after the kill: %q", info.Cluster.Leader)
	}
	t.Logf("new stream leader %s", info.Cluster.Leader)

	checkExactlyOnce(t, ctx, js, stream, total)

	// The killed node comes back at a new host port and catches up.
	done = harness.Step(t, "restart the killed node and catch up")
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitReplicasCurrent(t, ctx, s, 3, time.Minute)
	done()
	checkExactlyOnce(t, ctx, js, stream, total)
}

// checkExactlyOnce reads the whole stream and fails t unless it holds the
// messages msg-00000 ... of total exactly once each.
func checkExactlyOnce(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string, total int) {
	t.Helper()
	var held uint64
	var seen map[string]int
	var read int
	// An ephemeral consumer can land on a peer that is down, or lose its
	// server; then the whole read starts again with a new one.
	err := natsc.Retry(ctx, 30*time.Second, func(ctx context.Context) error {
		var err error
		held, seen, read, err = readStream(ctx, js, stream)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if held != uint64(total) {
		t.Errorf("stream %s holds %d messages, want %d", stream, held, total)
	}
	lost, doubled := 0, 0
	for i := range total {
		switch seen[fmt.Sprintf("msg-%05d", i)] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	if lost != 0 || doubled != 0 || len(seen) != total || read != total {
		t.Fatalf("stream %s: %d lost, %d doubled, %d distinct ids in %d messages, want %d exactly once", stream, lost, doubled, len(seen), read, total)
	}
	t.Logf("stream %s holds each of the %d messages exactly once", stream, total)
}

// readStream reads a whole stream with an ordered consumer and counts the
// messages by Nats-Msg-Id.
func readStream(ctx context.Context, js jetstream.JetStream, stream string) (held uint64, seen map[string]int, read int, err error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, nil, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, nil, 0, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, nil, 0, err
	}
	seen = make(map[string]int, info.State.Msgs)
	for read < int(info.State.Msgs) {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, nil, 0, err
		}
		n := 0
		for msg := range batch.Messages() {
			seen[msg.Headers().Get(nats.MsgIdHdr)]++
			n++
		}
		if err := batch.Error(); err != nil {
			return 0, nil, 0, err
		}
		if n == 0 {
			return 0, nil, 0, fmt.Errorf("read %d of %d messages, then nothing", read, info.State.Msgs)
		}
		read += n
	}
	return info.State.Msgs, seen, read, nil
}

// waitReplicasCurrent waits until the stream has a leader and want-1
// replicas, all current.
func waitReplicasCurrent(t *testing.T, ctx context.Context, s jetstream.Stream, want int, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, ctx, timeout, "stream replicas current", func(ctx context.Context) error {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil {
			return errors.New("no cluster information")
		}
		current := 0
		for _, r := range info.Cluster.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if info.Cluster.Leader == "" || current != want-1 {
			return fmt.Errorf("leader %q, %d of %d replicas current", info.Cluster.Leader, current, want-1)
		}
		return nil
	})
}
