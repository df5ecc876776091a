package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Killing any one service with kill -9 while 2,000 simulated nodes
// register, and starting it again, ends with every live node ACTIVE in
// PostgreSQL and Consul, and no lifecycle event twice: the accepted event
// may come more than once (the reducer re-sends it until the ack arrives),
// all copies of the node's one registration attempt alike. The nodes
// declare no health endpoint: one local agent running 2,000 HTTP checks
// would measure the machine, not the fleet.
func TestKillEachServiceDuring2000NodeSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	opts := sim.Options{Nodes: 2000, Rate: 80, HeartbeatInterval: 15 * time.Second, Seed: fmt.Sprintf("kill-%d", time.Now().UnixNano()), HealthEndpoints: false}
	r := &sim.Runner{
		Fleet:   node.Config{Brokers: servers.KafkaBrokers, Environment: "e2e", Namespace: harness.Namespace, ClientID: "e2e-simulate"},
		Options: opts,
		Log:     slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulate: %v", err)
		}
	}()

	// One service at a time, killed mid-registration and started again.
	for _, svc := range harness.Services {
		time.Sleep(3 * time.Second)
		if err := fleet.Kill(svc); err != nil {
			t.Fatal(err)
		}
		t.Logf("killed %s", svc)
		time.Sleep(time.Second)
		if err := fleet.Start(svc); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := fleet.WaitReady(rctx, svc)
		rcancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	var live []string
	for _, p := range sim.Plan(opts, "") {
		if p.Live() {
			live = append(live, p.Identity.NodeID.String())
		}
	}
	waitRegistered(t, 6*time.Minute, live...)

	// Every event of a node is in a reducer transaction; a kill may abort
	// one, never duplicate it.
	time.Sleep(2 * time.Second)
	perNode := map[string]map[string]int{}
	for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted,
		topics.NodeRegistrationAckReceived, topics.NodeBecameActive, topics.NodeLivenessExpired, topics.NodeRegistrationAckTimedOut} {
		for _, rc := range rec.Records(topic, live...) {
			if perNode[rc.Key] == nil {
				perNode[rc.Key] = map[string]int{}
			}
			perNode[rc.Key][topic]++
		}
	}
	accepted := map[string][]harness.Record{}
	for _, rc := range rec.Records(topics.NodeRegistrationAccepted, live...) {
		accepted[rc.Key] = append(accepted[rc.Key], rc)
	}
	dups, resent := 0, 0
	for _, id := range live {
		c := perNode[id]
		for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAckReceived, topics.NodeBecameActive} {
			if c[topic] != 1 {
				dups++
				if dups <= 5 {
					t.Errorf("node %s: %d %s events, want 1 (all: %v)", id, c[topic], shortTopic(topic), c)
				}
			}
		}
		// One attempt's accepted event, once or more, every copy with the
		// attempt's correlation id and ack deadline.
		a, err := harness.AcceptedAttempts(accepted[id])
		if err != nil || len(a) != 1 {
			dups++
			if dups <= 5 {
				t.Errorf("node %s: accepted events of %d registration attempts (%v), want 1 (%+v; all: %v)", id, len(a), err, a, c)
			}
			continue
		}
		resent += a[0].Copies - 1
	}
	if dups > 0 {
		t.Errorf("%d node/event pairs not exactly once among %d live nodes", dups, len(live))
	}
	t.Logf("%d accepted events re-sent to %d live nodes", resent, len(live))
}
