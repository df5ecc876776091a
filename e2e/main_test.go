package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Timing of the fleet under test: heartbeats every 2 s and a 20 s
// liveness window keep the expiry tests short while a service restart
// (a few seconds) stays well inside the window.
const (
	heartbeat      = 2 * time.Second
	livenessWindow = 20 * time.Second
)

var (
	repoRoot string
	prov     harness.Provider
	servers  harness.Servers
	fleet    *harness.Fleet
	// binDir holds the four services' binaries (a suite may run a fleet
	// of its own from them).
	binDir string
	db     *harness.DB
	// rec records every lifecycle, result and node topic from the start of
	// the run (the servers start empty), so tests can count events.
	rec *harness.Recorder
)

var recorded = []string{
	topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked,
	topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived,
	topics.NodeBecameActive, topics.NodeRegistrationAckTimedOut, topics.NodeLivenessExpired,
	topics.NodeRegistrationResult, topics.RequestIntrospection,
}

func TestMain(m *testing.M) {
	if os.Getenv("ONEX_REQUIRE_INFRA") != "1" && os.Getenv("ONEX_E2E") != "1" {
		fmt.Println("e2e: skipped (set ONEX_REQUIRE_INFRA=1 or ONEX_E2E=1; `make test` does)")
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if repoRoot, err = findRoot(); err != nil {
		return 0, err
	}
	if prov, err = harness.NewProvider(repoRoot); err != nil {
		return 0, err
	}
	start := time.Now()
	if servers, err = prov.Start(ctx); err != nil {
		return 0, fmt.Errorf("provider %s: %w", prov.Name(), err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if err := prov.Close(cctx); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping servers:", err)
		}
	}()
	fmt.Printf("e2e: servers from the %s provider up in %s\n", prov.Name(), time.Since(start).Round(time.Millisecond))

	binDir, err = os.MkdirTemp("", "onex-e2e-bin")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(binDir)
	coverDir := os.Getenv("ONEX_E2E_COVERDIR")
	if err := harness.Build(ctx, repoRoot, binDir, coverDir != ""); err != nil {
		return 0, err
	}
	if coverDir != "" {
		if err := os.MkdirAll(coverDir, 0o755); err != nil {
			return 0, err
		}
		os.Setenv("GOCOVERDIR", coverDir)
	}
	// The process's topic namespace, for every child that reads the
	// environment (onexctl, the Python programs); the fleets and nodes
	// the harness starts get it explicitly.
	os.Setenv(topicns.EnvVar, harness.Namespace.String())
	fmt.Printf("e2e: topic namespace %s\n", harness.Namespace)
	if err := harness.ProvisionTopics(ctx, servers.KafkaBrokers); err != nil {
		return 0, err
	}
	if db, err = harness.OpenDB(ctx, servers.PostgresURL); err != nil {
		return 0, err
	}
	defer db.Close()
	if rec, err = harness.NewRecorder(servers.KafkaBrokers, sarama.OffsetOldest, recorded...); err != nil {
		return 0, err
	}
	defer rec.Close()

	logDir := filepath.Join(os.TempDir(), "onex-e2e-logs")
	_ = os.RemoveAll(logDir)
	fleet, err = harness.NewFleet(servers, repoRoot, binDir, logDir, map[string]string{
		"ONEX_ENVIRONMENT":                   "e2e",
		"ONEX_NODE_HEARTBEAT_INTERVAL":       heartbeat.String(),
		"ONEX_LIVENESS_INTERVAL_SECONDS":     fmt.Sprint(int(livenessWindow.Seconds())),
		"ONEX_LIVENESS_WINDOW_SECONDS":       fmt.Sprint(int(livenessWindow.Seconds())),
		"ONEX_CONSUL_RECONCILE_INTERVAL":     "5",
		"ONEX_CONSUL_ORPHAN_GRACE":           "30",
		"ONEX_TOPIC_CATALOG_REFRESH_SECONDS": "5",
		// Breakers probe again soon after a backend returns, so the
		// degradation tests see recovery within the orchestrator's retries.
		"ONEX_CONSUL_CB_RESET_TIMEOUT":   "3",
		"ONEX_POSTGRES_CB_RESET_TIMEOUT": "3",
		"ONEX_POSTGRES_RETRY_MAX_DELAY":  "2",
		// A backend that cannot answer (the projector's partition waits
		// out a PostgreSQL outage) yields a partial result after this.
		"ONEX_ORCHESTRATOR_STEP_TIMEOUT_MS": "10000",
	})
	if err != nil {
		return 0, err
	}
	if err := fleet.StartAll(ctx); err != nil {
		fleet.StopAll()
		return 0, err
	}
	fmt.Printf("e2e: fleet ready (logs in %s)\n", logDir)
	code := m.Run()
	if err := fleet.StopAll(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the fleet:", err)
		if code == 0 {
			code = 1
		}
	}
	return code, nil
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the e2e directory")
		}
		dir = parent
	}
}

// nodes runs node identities on a fleet of their own for the test's
// duration (or until stop is called).
type nodes struct {
	t      *testing.T
	fleet  *node.Fleet
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startNodes(t *testing.T, interval time.Duration) *nodes {
	t.Helper()
	return startNodesOn(t, servers.KafkaBrokers, "e2e", interval)
}

// startNodesOn is startNodes on another cluster and environment (the
// clients take the process's Kafka security settings).
func startNodesOn(t *testing.T, brokers []string, env string, interval time.Duration) *nodes {
	t.Helper()
	f, err := node.NewFleet(node.Config{
		Brokers:           brokers,
		Environment:       env,
		Namespace:         harness.Namespace,
		HeartbeatInterval: interval,
		ClientID:          "e2e-nodes",
		Logger:            slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &nodes{t: t, fleet: f, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- f.Run(ctx) }()
	select {
	case <-f.Ready():
	case err := <-n.done:
		t.Fatalf("node fleet: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("node fleet not ready after 60s")
	}
	t.Cleanup(n.stop)
	return n
}

func (n *nodes) add(id node.Identity, opts node.Options) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.fleet.Add(ctx, id, opts); err != nil {
		n.t.Fatalf("add node %s: %v", id.NodeID, err)
	}
}

// stop stops the nodes as a crashed process would: heartbeats just end.
func (n *nodes) stop() {
	n.once.Do(func() {
		n.cancel()
		<-n.done
	})
}

func identity(kind registration.NodeKind, name string) node.Identity {
	id := uuid.New()
	return node.Identity{
		NodeID:  id,
		Name:    name,
		Type:    kind,
		Version: envelope.SemVer{Major: 1},
		Endpoints: map[string]string{
			"health": "http://127.0.0.1:9/" + id.String() + "/health",
			"api":    "http://127.0.0.1:9/" + id.String() + "/api",
		},
	}
}

func ids(idents ...node.Identity) []string {
	out := make([]string, len(idents))
	for i, id := range idents {
		out[i] = id.NodeID.String()
	}
	return out
}

// waitRegistered waits until every node is ACTIVE in PostgreSQL and
// registered in Consul.
func waitRegistered(t *testing.T, timeout time.Duration, nodeIDs ...string) {
	t.Helper()
	err := harness.Eventually(context.Background(), timeout, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, nodeIDs...)
		if err != nil {
			return err
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		var notActive, notInConsul []string
		for _, id := range nodeIDs {
			if r, ok := rows[id]; !ok || r.State != "active" {
				notActive = append(notActive, id)
			}
			if _, ok := svcs[id]; !ok {
				notInConsul = append(notInConsul, id)
			}
		}
		if len(notActive)+len(notInConsul) > 0 {
			return fmt.Errorf("%d of %d not ACTIVE in PostgreSQL (e.g. %v), %d not in Consul (e.g. %v)",
				len(notActive), len(nodeIDs), first(notActive), len(notInConsul), first(notInConsul))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func first(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// countEvents counts the lifecycle events of nodeID per topic.
func countEvents(nodeID string) map[string]int {
	out := map[string]int{}
	for _, r := range rec.Records("", nodeID) {
		out[r.Topic]++
	}
	return out
}

func shortTopic(t string) string {
	return strings.TrimSuffix(strings.TrimPrefix(t, "onex.evt.platform."), ".v1")
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return nil
}
