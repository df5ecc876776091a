package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

func TestPlanIsDeterministicAndHonoursFractions(t *testing.T) {
	o := Options{Nodes: 2000, FailAck: 0.1, Die: 0.05, Seed: "s1", HeartbeatInterval: time.Second}
	a, b := Plan(o, ""), Plan(o, "")
	if len(a) != 2000 {
		t.Fatalf("%d nodes", len(a))
	}
	neverAck, dead, ids := 0, 0, map[string]bool{}
	for i := range a {
		if a[i].Identity.NodeID != b[i].Identity.NodeID || a[i].Options.NeverAck != b[i].Options.NeverAck || a[i].Options.DieAfter != b[i].Options.DieAfter {
			t.Fatalf("node %d differs between two plans of the same seed", i)
		}
		if a[i].Identity.NodeID != NodeID("s1", i) {
			t.Fatalf("node %d id is not NodeID(seed, i)", i)
		}
		if err := a[i].Identity.Validate(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		ids[a[i].Identity.NodeID.String()] = true
		if a[i].Options.NeverAck {
			neverAck++
		}
		if d := a[i].Options.DieAfter; d != 0 {
			dead++
			if d < time.Second || d > 3*time.Second {
				t.Errorf("node %d dies after %s, want 1-3 intervals", i, d)
			}
		}
		if a[i].Live() != (!a[i].Options.NeverAck && a[i].Options.DieAfter == 0) {
			t.Errorf("Live() wrong for node %d", i)
		}
	}
	if len(ids) != 2000 {
		t.Errorf("%d distinct ids", len(ids))
	}
	// Binomial(2000, p): a band of about five standard deviations.
	if neverAck < 140 || neverAck > 260 {
		t.Errorf("%d never-ack nodes for 10%% of 2000", neverAck)
	}
	if dead < 50 || dead > 150 {
		t.Errorf("%d dying nodes for 5%% of 2000", dead)
	}
	if other := Plan(Options{Nodes: 1, Seed: "s2"}, ""); other[0].Identity.NodeID == a[0].Identity.NodeID {
		t.Error("two seeds name the same node")
	}
	// Changing one fraction keeps the other fault on the same nodes.
	o2 := o
	o2.FailAck = 0
	for i, p := range Plan(o2, "") {
		if (p.Options.DieAfter != 0) != (a[i].Options.DieAfter != 0) {
			t.Fatalf("node %d: die fault moved when --fail-ack changed", i)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Nodes: 1}, ""},
		{Options{Nodes: -1}, "--nodes"},
		{Options{Rate: -1}, "--rate"},
		{Options{FailAck: 1.5}, "--fail-ack"},
		{Options{Die: -0.1}, "--die"},
		{Options{HeartbeatInterval: -time.Second}, "--heartbeat-interval"},
	}
	for _, c := range cases {
		err := c.o.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunnerAgainstBroker runs a small simulated fleet against the real
// broker: every node introspects, progress lines are JSON, and the health
// server answers for live nodes and not for strangers.
func TestRunnerAgainstBroker(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	out := &syncBuffer{}
	r := &Runner{
		Fleet:       node.Config{Brokers: brokers, Environment: "test"},
		Options:     Options{Nodes: 12, Rate: 0, Seed: testkit.Unique(), HealthEndpoints: true, HealthAddr: addr, HeartbeatInterval: 500 * time.Millisecond},
		Out:         out,
		ReportEvery: 200 * time.Millisecond,
		JSON:        true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	var last Report
	for time.Now().Before(deadline) && last.Introspections < 12 {
		time.Sleep(100 * time.Millisecond)
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatalf("report line is not JSON: %q", sc.Text())
			}
		}
	}
	if last.Introspections != 12 || last.Started != 12 || last.Nodes != 12 {
		t.Fatalf("last report %+v, want 12 nodes introspected", last)
	}
	live := NodeID(r.Options.Seed, 3)
	resp, err := http.Get(fmt.Sprintf("http://%s/nodes/%s/health", addr, live))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("health of a live node: %d", resp.StatusCode)
	}
	resp, err = http.Get(fmt.Sprintf("http://%s/nodes/%s/health", addr, NodeID("other", 0)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("health of a stranger: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(out.String(), `"final":true`) {
		t.Error("no final report")
	}
}
