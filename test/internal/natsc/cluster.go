package natsc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/activitychat/chat/test/internal/harness"
)

// ClusterName is the --cluster_name of RunCluster's nodes.
const ClusterName = "e2e"

// Cluster is a routed nats-server cluster with JetStream, its nodes on one
// labelled Docker network.
type Cluster struct {
	// Network is the cluster's network. Containers that join it reach node i
	// at Nodes[i].Alias, port 4222.
	Network *testcontainers.DockerNetwork
	// Nodes are the nodes n1, n2, ... in order.
	Nodes []*Container
}

// RunCluster starts n nodes of image in parallel on a new network, routed to
// each other (node i is server and host n<i+1>), and waits until every node
// reports JetStream healthy and all agree on a meta leader. Nodes do not
// advertise cluster addresses to clients (--no_advertise), so a client on
// the host uses only the published URLs it was given. opts apply to every
// node. On error the returned cluster, when not nil, still has to be
// terminated.
func RunCluster(ctx context.Context, image string, n int, opts ...testcontainers.ContainerCustomizer) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("cluster of %d nodes", n)
	}
	nw, err := network.New(ctx, network.WithLabels(harness.Labels()))
	c := &Cluster{Network: nw}
	if err != nil {
		return c, fmt.Errorf("cluster network: %w", err)
	}

	names := make([]string, n)
	routes := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
		routes[i] = "nats://" + names[i] + ":6222"
	}

	c.Nodes = make([]*Container, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeOpts := append([]testcontainers.ContainerCustomizer{
				WithServerName(name),
				WithArgs(
					"--cluster_name", ClusterName,
					"--cluster", "nats://0.0.0.0:6222",
					"--routes", strings.Join(routes, ","),
					"--no_advertise",
				),
				network.WithNetwork([]string{name}, nw),
			}, opts...)
			node, err := Run(ctx, image, nodeOpts...)
			if node != nil {
				node.Alias = name
			}
			c.Nodes[i] = node
			if err != nil {
				errs[i] = fmt.Errorf("node %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.WaitReady(ctx, time.Minute); err != nil {
		return c, err
	}
	return c, nil
}

// Terminate removes the nodes and the network.
func (c *Cluster) Terminate(ctx context.Context) error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, node := range c.Nodes {
		if node != nil {
			errs = append(errs, node.Terminate(ctx))
		}
	}
	if c.Network != nil {
		errs = append(errs, c.Network.Remove(ctx))
	}
	return errors.Join(errs...)
}

// CleanupCluster registers on tb, right after RunCluster and before its
// error check, the cluster's removal at the end of the test and, ahead of
// it, a dump of every node's logs when the test failed. A nil c is fine.
func CleanupCluster(tb testing.TB, c *Cluster) {
	tb.Helper()
	if c == nil {
		return
	}
	tb.Cleanup(func() {
		if err := c.Terminate(context.Background()); err != nil {
			tb.Logf("terminate cluster: %v", err)
		}
	})
	tb.Cleanup(func() {
		if !tb.Failed() {
			return
		}
		for _, node := range c.Nodes {
			if node != nil {
				harness.DumpLogs(tb, node.Alias, node)
			}
		}
	})
}

// Node returns the node whose server name is name, or nil.
func (c *Cluster) Node(name string) *Container {
	for _, node := range c.Nodes {
		if node != nil && node.ServerName == name {
			return node
		}
	}
	return nil
}

// InternalURLs returns the client URLs of the nodes on the cluster network,
// for containers on it: nats://n1:4222,nats://n2:4222,...
func (c *Cluster) InternalURLs() string {
	urls := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		urls[i] = "nats://" + node.Alias + ":4222"
	}
	return strings.Join(urls, ",")
}

// ClientURLs returns the host URLs of the running nodes, read afresh.
func (c *Cluster) ClientURLs(ctx context.Context) ([]string, error) {
	var urls []string
	for _, node := range c.Nodes {
		st, err := node.State(ctx)
		if err != nil {
			return nil, err
		}
		if !st.Running {
			continue
		}
		u, err := node.ClientURL(ctx)
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, errors.New("no node of the cluster is running")
	}
	return urls, nil
}

// Connect connects a NATS client from the host to the running nodes, in
// order, reconnecting for as long as it takes. It knows only the URLs
// published at the time of the call: connect again after a node restarts.
func (c *Cluster) Connect(ctx context.Context, opts ...nats.Option) (*nats.Conn, error) {
	urls, err := c.ClientURLs(ctx)
	if err != nil {
		return nil, err
	}
	base := []nats.Option{
		nats.Name("e2e"),
		nats.DontRandomize(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
	}
	return nats.Connect(strings.Join(urls, ","), append(base, opts...)...)
}

// WaitReady waits, up to timeout, until every running node answers /healthz
// with 200 and reports the same meta leader, a member of a meta group of
// the cluster's full size, and then until the meta leader places a stream
// with as many replicas as nodes run. Health alone is not enough: until the
// leader has heard from every peer, creating an R3 stream fails with "no
// suitable peers for placement".
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = c.ready(ctx); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := c.probePlacement(ctx); err != nil {
		return fmt.Errorf("cluster not ready after %s: %w", timeout, err)
	}
	return nil
}

// probeStream is the stream WaitReady creates and deletes.
const probeStream = "E2E_PLACEMENT_PROBE"

// probePlacement creates and deletes a memory stream replicated on every
// running node until that succeeds.
func (c *Cluster) probePlacement(ctx context.Context) error {
	running := 0
	for _, node := range c.Nodes {
		if st, err := node.State(ctx); err == nil && st.Running {
			running++
		}
	}
	nc, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return Retry(ctx, 5*time.Second, func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     probeStream,
			Subjects: []string{"e2e.placement.probe"},
			Storage:  jetstream.MemoryStorage,
			Replicas: running,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("place an R%d stream: %w", running, err)
		}
		return js.DeleteStream(ctx, probeStream)
	})
}

func (c *Cluster) ready(ctx context.Context) error {
	leader := ""
	for _, node := range c.Nodes {
		st, err := node.State(ctx)
		if err != nil {
			return err
		}
		if !st.Running {
			continue
		}
		if err := node.Healthy(ctx); err != nil {
			return err
		}
		meta, err := node.Meta(ctx)
		if err != nil {
			return err
		}
		switch {
		case meta.Leader == "":
			return fmt.Errorf("%s: no meta leader", node.name())
		case meta.Size != len(c.Nodes):
			return fmt.Errorf("%s: meta group of %d, want %d", node.name(), meta.Size, len(c.Nodes))
		case leader != "" && meta.Leader != leader:
			return fmt.Errorf("%s: meta leader %s, others say %s", node.name(), meta.Leader, leader)
		}
		leader = meta.Leader
	}
	if leader == "" {
		return errors.New("no node of the cluster is running")
	}
	return nil
}

// MetaCluster is the part of /jsz's meta_cluster the tests read.
type MetaCluster struct {
	Name   string `json:"name"`
	Leader string `json:"leader"`
	Size   int    `json:"cluster_size"`
}

// Meta returns the node's view of the JetStream meta group from /jsz.
func (c *Container) Meta(ctx context.Context) (MetaCluster, error) {
	u, err := c.MonitorURL(ctx)
	if err != nil {
		return MetaCluster{}, err
	}
	body, status, err := get(ctx, u+"/jsz")
	if err != nil {
		return MetaCluster{}, err
	}
	if status != http.StatusOK {
		return MetaCluster{}, fmt.Errorf("%s /jsz: %d", c.name(), status)
	}
	var jsz struct {
		Meta *MetaCluster `json:"meta_cluster"`
	}
	if err := json.Unmarshal([]byte(body), &jsz); err != nil {
		return MetaCluster{}, fmt.Errorf("%s /jsz: %w", c.name(), err)
	}
	if jsz.Meta == nil {
		return MetaCluster{}, fmt.Errorf("%s /jsz: no meta_cluster", c.name())
	}
	return *jsz.Meta, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), resp.StatusCode, err
}
