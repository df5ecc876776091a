package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

var (
	onexctlOnce sync.Once
	onexctlBin  string
	onexctlErr  error
)

// onexctl runs the operator CLI, built once from this tree, against the
// suite's broker and returns its combined output and exit error.
func onexctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runOnexctl(t, []string{"KAFKA_BOOTSTRAP_SERVERS=" + strings.Join(servers.KafkaBrokers, ",")}, args...)
}

// runOnexctl runs the operator CLI with env added to the test's
// environment and returns its combined output and exit error.
func runOnexctl(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	onexctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "onex-e2e-onexctl")
		if err != nil {
			onexctlErr = err
			return
		}
		onexctlBin = filepath.Join(dir, "onexctl")
		cmd := exec.Command("go", "build", "-o", onexctlBin, "./cmd/onexctl")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			onexctlErr = fmt.Errorf("go build onexctl: %w\n%s", err, out)
		}
	})
	if onexctlErr != nil {
		t.Fatal(onexctlErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, onexctlBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitOut waits until the node's row is liveness_expired with its liveness
// timeout marker (the operator's decision, not an expiry: the liveness
// window is far off) and its service is gone from Consul.
func waitOut(t *testing.T, key string) {
	t.Helper()
	err := harness.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		rows, err := db.DeclaredRows(ctx, key)
		if err != nil {
			return err
		}
		if st := rows[key].State; st != "liveness_expired" {
			return fmt.Errorf("state %q, want liveness_expired", st)
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		if _, ok := svcs[key]; ok {
			return fmt.Errorf("still in Consul")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logged reports whether the service's log has a line with every part.
func logged(svc string, parts ...string) bool {
	b, err := os.ReadFile(fleet.LogPath(svc))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Suite 11 — operator control through onexctl: `nodes deregister` takes an
// ACTIVE node out of Consul at once (liveness_expired, a liveness-expired
// event caused by the command) and leaves the others alone; `nodes evict`
// takes out the nodes stuck in a state; who asked and why is logged by the
// orchestrator (accepted) and the reducer (decided); a bad command is
// refused by the CLI with one line before anything is published.
func TestSuite11_OperatorCommandsThroughOnexctl(t *testing.T) {
	// A Go node re-announces itself as soon as it learns it expired (as a
	// live node should), so the nodes a command takes out are stopped
	// first, each in a fleet of its own: what the test sees is the
	// command's effect, not a re-registration racing it.
	target := identity(registration.NodeKindEffect, "e2e_operator_target")
	bystander := identity(registration.NodeKindCompute, "e2e_operator_bystander")
	stuck := identity(registration.NodeKindEffect, "e2e_operator_stuck")
	targetNodes, stuckNodes, others := startNodes(t, heartbeat), startNodes(t, heartbeat), startNodes(t, heartbeat)
	targetNodes.add(target, node.Options{})
	others.add(bystander, node.Options{})
	stuckNodes.add(stuck, node.Options{NeverAck: true})
	waitRegistered(t, 60*time.Second, ids(target, bystander)...)
	targetNodes.stop()

	who := "e2e-operator-" + uuid.NewString()[:8]
	out, err := onexctl(t, "nodes", "deregister", target.NodeID.String(), "--reason", "decommissioned by e2e", "--as", who)
	if err != nil {
		t.Fatalf("onexctl nodes deregister: %v\n%s", err, out)
	}
	waitOut(t, target.NodeID.String())
	waitRegistered(t, 10*time.Second, ids(bystander)...)
	if n := countEvents(target.NodeID.String())[topics.NodeLivenessExpired]; n != 1 {
		t.Errorf("%d liveness-expired events for the deregistered node, want 1", n)
	}
	ev := rec.Records(topics.NodeLivenessExpired, target.NodeID.String())
	if len(ev) > 0 {
		var p struct {
			CausationID uuid.UUID `json:"causation_id"`
		}
		if _, err := ev[0].Envelope(&p); err != nil || !strings.Contains(out, p.CausationID.String()) {
			t.Errorf("liveness-expired event caused by %s (%v); onexctl printed %q", p.CausationID, err, out)
		}
	}
	err = harness.Eventually(context.Background(), 10*time.Second, func(context.Context) error {
		if !logged("registration-orchestrator", "operator command", who, "decommissioned by e2e") {
			return fmt.Errorf("the orchestrator did not log the command with who and why")
		}
		if !logged("reducer", "operator command decided", who, "decommissioned by e2e", `"outcome":"applied"`) {
			return fmt.Errorf("the reducer did not log the decision with who and why")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// The stuck node awaits its ack (the ack timeout is 30 s): evict what
	// has been awaiting it for over a second.
	err = harness.Eventually(context.Background(), 20*time.Second, func(ctx context.Context) error {
		rows, err := db.DeclaredRows(ctx, stuck.NodeID.String())
		if err != nil {
			return err
		}
		if st := rows[stuck.NodeID.String()].State; st != "awaiting_ack" {
			return fmt.Errorf("stuck node state %q, want awaiting_ack", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stuckNodes.stop()
	time.Sleep(2 * time.Second)
	out, err = onexctl(t, "nodes", "evict", "--state", "awaiting_ack", "--older-than", "1s", "--reason", "stuck in e2e", "--as", who)
	if err != nil {
		t.Fatalf("onexctl nodes evict: %v\n%s", err, out)
	}
	waitOut(t, stuck.NodeID.String())
	waitRegistered(t, 10*time.Second, ids(bystander)...)

	// Refused before anything is published: one line naming the problem.
	for _, args := range [][]string{
		{"nodes", "evict", "--state", "liveness_expired", "--older-than", "1h"},
		{"nodes", "deregister", "not-a-uuid"},
	} {
		out, err := onexctl(t, args...)
		if err == nil {
			t.Errorf("onexctl %v succeeded: %s", args, out)
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
			t.Errorf("onexctl %v: %d lines of error, want one:\n%s", args, len(lines), out)
		}
	}
}

// catalogEntry is the part of a catalog entry the test reads.
type catalogEntry struct {
	TopicSuffix     string   `json:"topic_suffix"`
	PublisherCount  int      `json:"publisher_count"`
	SubscriberCount int      `json:"subscriber_count"`
	Tags            []string `json:"tags"`
}

// catalogAnswer waits for the answer to a catalog query and returns its
// entries.
func catalogAnswer(t *testing.T, r *harness.Recorder, corr uuid.UUID) []catalogEntry {
	t.Helper()
	var entries []catalogEntry
	err := harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		recs := r.Records(topics.TopicCatalogResponse, corr.String())
		if len(recs) == 0 {
			return fmt.Errorf("no topic catalog response to %s", corr)
		}
		env, err := envelope.Decode(recs[0].Value)
		if err != nil {
			return err
		}
		if _, err := registration.DecodeTopicCatalogResponse(env.Payload); err != nil {
			return fmt.Errorf("response is not a ModelTopicCatalogResponse: %w", err)
		}
		var p struct {
			Topics []catalogEntry `json:"topics"`
		}
		if _, err := recs[0].Envelope(&p); err != nil {
			return err
		}
		entries = p.Topics
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func findEntry(entries []catalogEntry, topic string) *catalogEntry {
	for i := range entries {
		if entries[i].TopicSuffix == topic {
			return &entries[i]
		}
	}
	return nil
}

// changedWith waits for a topic-catalog-changed notice that adds (or
// removes) topic.
func changedWith(t *testing.T, r *harness.Recorder, topic string, added bool) {
	t.Helper()
	err := harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		for _, rc := range r.Records(topics.TopicCatalogChanged) {
			env, err := envelope.Decode(rc.Value)
			if err != nil {
				continue
			}
			ch, err := registration.DecodeTopicCatalogChanged(env.Payload)
			if err != nil {
				return fmt.Errorf("notice is not a ModelTopicCatalogChanged: %w", err)
			}
			if added && slices.Contains(ch.TopicsAdded, topic) || !added && slices.Contains(ch.TopicsRemoved, topic) {
				return nil
			}
		}
		return fmt.Errorf("no topic-catalog-changed notice with %s (added %v)", topic, added)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Suite 11 — the topic catalog includes the topics ACTIVE nodes declare
// (event_bus): a node's topics appear with their publisher and subscriber
// counts, and topic-catalog-changed announces them, once it is ACTIVE; once
// it is deregistered they go, announced again.
func TestSuite11_CatalogTopicsFromNodes(t *testing.T) {
	r := recordFromEnd(t, topics.TopicCatalogResponse, topics.TopicCatalogChanged)
	suffix := uuid.NewString()[:8]
	pub := "onex.evt.e2e-catalog.thing-happened-" + suffix + ".v1"
	sub := "onex.cmd.e2e-catalog.do-thing-" + suffix + ".v1"
	ns := startNodes(t, heartbeat)
	n := identity(registration.NodeKindEffect, "e2e_catalog_node")
	n.EventBus = &registration.NodeEventBusConfig{
		PublishTopics:   []registration.EventBusTopicEntry{{Topic: pub, MessageCategory: "EVENT"}},
		SubscribeTopics: []registration.EventBusTopicEntry{{Topic: sub, MessageCategory: "EVENT"}},
	}
	ns.add(n, node.Options{})
	waitRegistered(t, 60*time.Second, ids(n)...)

	changedWith(t, r, pub, true)
	entries := catalogAnswer(t, r, queryTopicCatalog(t))
	p, s := findEntry(entries, pub), findEntry(entries, sub)
	if p == nil || s == nil {
		t.Fatalf("the catalog lacks the node's topics %s, %s", pub, sub)
	}
	if p.PublisherCount != 1 || p.SubscriberCount != 0 || s.SubscriberCount != 1 || s.PublisherCount != 0 {
		t.Errorf("counts: %s %+v, %s %+v", pub, *p, sub, *s)
	}
	if !slices.Contains(p.Tags, "source:node") {
		t.Errorf("tags of a node-declared topic: %v", p.Tags)
	}

	ns.stop() // a live Go node would re-announce itself at once
	if out, err := onexctl(t, "nodes", "deregister", n.NodeID.String(), "--reason", "catalog e2e"); err != nil {
		t.Fatalf("onexctl nodes deregister: %v\n%s", err, out)
	}
	changedWith(t, r, pub, false)
	if e := findEntry(catalogAnswer(t, r, queryTopicCatalog(t)), pub); e != nil {
		t.Errorf("the catalog still lists %s after its only publisher left: %+v", pub, *e)
	}
}
