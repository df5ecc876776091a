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
// PostgreSQL and Consul, and no lifecycle event twice. The nodes declare no
// health endpoint: one local agent running 2,000 HTTP checks would measure
// the machine, not the fleet.
func TestKillEachServiceDuring2000NodeSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	opts := sim.Options{Nodes: 2000, Rate: 80, HeartbeatInterval: 15 * time.Second, Seed: fmt.Sprintf("kill-%d", time.Now().UnixNano()), HealthEndpoints: false}
	r := &sim.Runner{
		Fleet:   node.Config{Brokers: servers.KafkaBrokers, Environment: "e2e", ClientID: "e2e-simulate"},
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
	dups := 0
	for _, id := range live {
		c := perNode[id]
		for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived, topics.NodeBecameActive} {
			if c[topic] != 1 {
				dups++
				if dups <= 5 {
					t.Errorf("node %s: %d %s events, want 1 (all: %v)", id, c[topic], shortTopic(topic), c)
				}
			}
		}
	}
	if dups > 0 {
		t.Errorf("%d node/event pairs not exactly once among %d live nodes", dups, len(live))
	}
}
