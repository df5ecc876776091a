package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// Suite 7 — graceful degradation. These tests stop and resume servers, so
// they run after the others (file order), and before the 2,000-node kill
// test, whose backlog would otherwise slow them.

func stopServer(t *testing.T, s harness.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := prov.Stop(ctx, s); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { resumeServer(t, s) }) // idempotent: a running server stays
}

func resumeServer(t *testing.T, s harness.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := prov.Resume(ctx, s); err != nil {
		t.Fatal(err)
	}
}

func fleetStillUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range harness.Services {
		if !fleet.Running(s) {
			t.Errorf("%s exited", s)
			continue
		}
		if err := fleet.WaitReady(ctx, s); err != nil {
			t.Error(err)
		}
	}
}

// Consul down: registrations report partial (PostgreSQL applied, Consul
// failed), the Consul side is retried, and once Consul is back the result
// says success with the retry counted; services the restarted agent lost
// are restored by anti-entropy.
func TestSuite7_ConsulDown(t *testing.T) {
	ns := startNodes(t, heartbeat)
	before := identity(registration.NodeKindEffect, "e2e_before_consul_outage")
	ns.add(before, node.Options{})
	waitRegistered(t, 60*time.Second, before.NodeID.String())

	stopServer(t, harness.Consul)
	id := identity(registration.NodeKindCompute, "e2e_consul_down")
	key := id.NodeID.String()
	ns.add(id, node.Options{})
	partial := waitResult(t, key, func(r pipeline.RegistrationResult) bool { return r.Status == "partial" })
	if !partial.PostgresApplied || partial.ConsulApplied || partial.ConsulError == nil {
		t.Errorf("partial result %+v, want postgres applied and a consul error", partial)
	}
	// PostgreSQL does not need Consul: the node goes ACTIVE there (the ack
	// may land after the partial result).
	err := harness.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, key)
		if err != nil {
			return err
		}
		if rows[key].State != "active" {
			return fmt.Errorf("with Consul down the node is %q in PostgreSQL, want active", rows[key].State)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	resumeServer(t, harness.Consul)
	final := waitResult(t, key, func(r pipeline.RegistrationResult) bool { return r.Status == "success" })
	if !final.ConsulApplied || final.Retries["consul"] < 1 {
		t.Errorf("final result %+v, want consul applied after at least one retry", final)
	}
	// The -dev agent came back empty: anti-entropy puts back what it lost.
	waitRegistered(t, 60*time.Second, key, before.NodeID.String())
	fleetStillUp(t)
}

// PostgreSQL down: the Consul side applies, the PostgreSQL side waits and
// applies once the database is back; nothing is lost.
func TestSuite7_PostgresDown(t *testing.T) {
	ns := startNodes(t, heartbeat)
	stopServer(t, harness.Postgres)
	id := identity(registration.NodeKindReducer, "e2e_postgres_down")
	key := id.NodeID.String()
	ns.add(id, node.Options{})
	partial := waitResult(t, key, func(r pipeline.RegistrationResult) bool { return r.Status != "success" })
	if partial.PostgresApplied || !partial.ConsulApplied {
		t.Errorf("result with PostgreSQL down %+v, want consul applied and postgres not", partial)
	}
	resumeServer(t, harness.Postgres)
	waitResult(t, key, func(r pipeline.RegistrationResult) bool { return r.Status == "success" && r.PostgresApplied })
	waitRegistered(t, 90*time.Second, key)
	fleetStillUp(t)
}

// Broker restarted: a node's publish fails (an error, not a crash) while
// Kafka is down; nodes started during the outage register once it is back;
// the services ride it out.
func TestSuite7_BrokerRestart(t *testing.T) {
	ns := startNodes(t, heartbeat)
	up := identity(registration.NodeKindOrchestrator, "e2e_before_broker_outage")
	ns.add(up, node.Options{})
	waitRegistered(t, 60*time.Second, up.NodeID.String())

	stopServer(t, harness.Kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := ns.fleet.Introspect(ctx, up.NodeID, registration.ReasonRequest, uuid.New())
	cancel()
	if err == nil {
		t.Error("publishing an introspection with Kafka down reported success")
	}
	during := identity(registration.NodeKindEffect, "e2e_during_broker_outage")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	addErr := ns.fleet.Add(ctx, during, node.Options{})
	cancel()
	if addErr == nil {
		t.Log("startup introspection during the outage was buffered rather than refused")
	}
	resumeServer(t, harness.Kafka)
	waitRegistered(t, 2*time.Minute, up.NodeID.String(), during.NodeID.String())
	fleetStillUp(t)
	if s, _ := ns.fleet.Status(during.NodeID); s != node.StatusActive {
		t.Errorf("node started during the outage sees itself %s", s)
	}
	if err := harness.Eventually(context.Background(), 10*time.Second, func(context.Context) error {
		if st := ns.fleet.Stats(); st.PublishErrors == 0 {
			return fmt.Errorf("no publish error counted during the outage")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
