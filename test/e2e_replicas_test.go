package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/test/internal/harness"
)

// handledMetric counts the events a consumer process handled
// (contracts/eventbus/metrics.go).
const handledMetric = "messaging_handler_total"

// TestConsumerReplicas is scenario 7: two consumer replicas with the same
// service name share one durable consumer per subject. Both do part of the
// work, and together they apply every event exactly once in effect.
func TestConsumerReplicas(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 4*time.Minute)
	defer harness.Step(t, "scenario 7")()

	s := startStack(t, ctx, imgs, stackConfig{Consumers: 2})
	_, js := s.Connect(t, ctx)

	// 20 activities × (1 created + 50 joins + 10 leaves) = 1,220 events.
	p := newPlan("replicas", 20, 50, 10)
	applyPhase(t, ctx, s, p, phaseCreated, time.Minute)
	applyPhase(t, ctx, s, p, phaseJoined, 2*time.Minute)
	c := applyPhase(t, ctx, s, p, phaseLeft, 2*time.Minute)
	t.Logf("two replicas: %s", c)
	expectQuiet(t, ctx, js, p.Total())

	// One durable consumer per subject, however many replicas.
	st, err := js.Stream(ctx, activityStream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range st.ConsumerNames(ctx).Name() {
		names = append(names, name)
	}
	if len(names) != 3 {
		t.Errorf("stream %s has consumers %v, want one per subject (3)", activityStream, names)
	}

	total := 0.0
	for i, r := range s.Consumers {
		u, err := r.MetricsURL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := metricSum(ctx, u+"/metrics", handledMetric)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replica %d handled %.0f events", i+1, n)
		if n == 0 {
			t.Errorf("replica %d handled no event: the replicas do not share the work", i+1)
		}
		total += n
	}
	if total < float64(p.Total()) {
		t.Errorf("the replicas handled %.0f events, want at least %d", total, p.Total())
	}
}

// metricSum scrapes a Prometheus text exposition and adds up every sample
// of the metric name, whatever its labels.
func metricSum(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[strings.LastIndexByte(rest, '}')+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("%s has no %s", url, name)
	}
	return sum, nil
}
