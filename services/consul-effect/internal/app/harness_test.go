package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/consulservice"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/snapshottest"
)

// modes are the registration modes the real-Consul tests run in.
var modes = []effect.Mode{effect.ModeCatalog, effect.ModeAgent}

// harness runs the consul effect in-process against the real broker and a
// real Consul agent, on topics of its own, in one registration mode.
type harness struct {
	t                                     *testing.T
	brokers                               []string
	consulAddr                            string
	mode                                  effect.Mode
	env                                   string
	intents, results, snapshots, dlqTopic string
	prod                                  sarama.SyncProducer
	consul                                *api.Client
	logPath                               string

	app    *App
	svc    *service.Service
	cancel context.CancelFunc
	done   chan error

	mu   sync.Mutex
	res  map[uuid.UUID][]received
	nres int
}

type received struct {
	res pipeline.EffectResult
	key string
	// corr is the record's correlation_id header.
	corr uuid.UUID
}

func newHarness(t *testing.T, consulAddr string, mode effect.Mode) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (real broker and Consul); skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	h := &harness{t: t, brokers: brokers, consulAddr: consulAddr, mode: mode, env: "cetest-" + u,
		intents:   "onex.cmd.ce" + u + ".consul-intents.v1",
		results:   "onex.evt.ce" + u + ".effect-results.v1",
		snapshots: "onex.snapshot.ce" + u + ".registration-snapshots.v1",
		dlqTopic:  "onex.dlq.ce" + u + ".commands.v1",
		res:       map[uuid.UUID][]received{},
		logPath:   filepath.Join(t.TempDir(), "consul-effect.log"),
	}
	compact := "compact"
	testkit.CreateTopic(t, brokers, h.intents, 3, nil)
	testkit.CreateTopic(t, brokers, h.results, 3, nil)
	testkit.CreateTopic(t, brokers, h.snapshots, 3, map[string]*string{"cleanup.policy": &compact})
	testkit.CreateTopic(t, brokers, h.dlqTopic, 1, nil)
	prod, err := sarama.NewSyncProducer(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	h.prod = prod
	c, err := api.NewClient(&api.Config{Address: consulAddr})
	if err != nil {
		t.Fatal(err)
	}
	h.consul = c
	h.collectResults()
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CONSUL_EFFECT_TEST_LOG") == "1" {
			b, _ := os.ReadFile(h.logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("consul-effect log (last 60 lines):\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	return h
}

// settings are the service settings a test starts with.
func (h *harness) settings(interval time.Duration) Settings {
	return Settings{
		Env: h.env, IntentsTopic: h.intents, ResultsTopic: h.results, SnapshotsTopic: h.snapshots, DLQTopic: h.dlqTopic,
		Group: h.env, Mode: h.mode, ReconcileInterval: interval, OrphanGrace: 30 * time.Second, CatchUpIdle: 300 * time.Millisecond,
		Consul: backend.Settings{Addr: h.consulAddr, Timeout: 2 * time.Second, BreakerThreshold: 5, BreakerReset: 60 * time.Second},
		Retry:  retry.Default(), Source: "test", DrainTimeout: 5 * time.Second,
	}
}

// start runs the effect and waits until /readyz would say ready.
func (h *harness) start(s Settings) {
	h.t.Helper()
	h.launch(s, nil)
	h.eventually(60*time.Second, "service ready", func() bool { return h.svc.Health.Ready() })
	h.eventually(30*time.Second, "intents partitions assigned", func() bool {
		r := h.app.runner.Load()
		return r != nil && r.Assigned()
	})
}

// launch runs the effect without waiting for it, with a chance to change
// the App before it runs.
func (h *harness) launch(s Settings, prepare func(*App)) {
	t := h.t
	t.Helper()
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = &service.Service{
		Name: "consul-effect",
		Config: &config.Config{Service: "consul-effect", KafkaBootstrap: strings.Join(h.brokers, ","), Environment: h.env,
			ConsulAddr: h.consulAddr, DrainTimeout: 5 * time.Second},
		Log:      observability.NewLogger(f, "consul-effect", "debug"),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(Conditions...),
	}
	h.app, err = New(h.svc, s)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(h.app)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.app.Run(ctx); f.Close() }()
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("consul effect did not stop within 30s")
	}
}

func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("timed out after %v waiting for: %s", timeout, what)
}

// collectResults consumes the results topic for the whole test.
func (h *harness) collectResults() {
	t := h.t
	cfg := testkit.AdminConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	consumer, err := sarama.NewConsumer(h.brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := consumer.Partitions(h.results)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(h.results, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				if ct := pipeline.ContentType(m.Headers); ct != pipeline.EffectResultContentType {
					t.Errorf("result content type %q, want %q", ct, pipeline.EffectResultContentType)
				}
				rec, err := pipeline.DecodeEffectResultRecord(m.Headers, m.Value)
				if err != nil {
					t.Errorf("result record: %v", err)
					continue
				}
				r := *rec.Result
				hd := envelope.HeadersFromRecords(m.Headers)
				if hd.MessageID != rec.EnvelopeID || rec.CreatedAt.IsZero() {
					t.Errorf("result of %s: message_id header %s, envelope id %s, created at %s", r.IntentID, hd.MessageID, rec.EnvelopeID, rec.CreatedAt)
				}
				// The correlation id the orchestrator's bus reads of a
				// protobuf record: its header.
				corr := hd.CorrelationID
				h.mu.Lock()
				h.res[r.IntentID] = append(h.res[r.IntentID], received{res: r, key: string(m.Key), corr: corr})
				h.nres++
				h.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
		consumer.Close()
	})
}

// result waits for the n-th result (1-based) of an intent.
func (h *harness) result(intentID uuid.UUID, n int) received {
	h.t.Helper()
	var got received
	h.eventually(30*time.Second, fmt.Sprintf("result %d of intent %s", n, intentID), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.res[intentID]) >= n {
			got = h.res[intentID][n-1]
			return true
		}
		return false
	})
	return got
}

func (h *harness) resultCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nres
}

type sent struct {
	intentID uuid.UUID
	corr     uuid.UUID
}

// sendIntent publishes a consul intent as the orchestrator does.
func (h *harness) sendIntent(node uuid.UUID, seq int64, attempt int, intentType string, payload any, intentID uuid.UUID) sent {
	h.t.Helper()
	return h.sendIntentWith(nil, node, seq, attempt, intentType, payload, intentID)
}

// sendIntentWith is sendIntent with extra record headers.
func (h *harness) sendIntentWith(headers []sarama.RecordHeader, node uuid.UUID, seq int64, attempt int, intentType string, payload any, intentID uuid.UUID) sent {
	h.t.Helper()
	if intentID == uuid.Nil {
		intentID = uuid.New()
	}
	corr := uuid.NewSHA1(intentID, []byte("corr"))
	body, err := json.Marshal(payload)
	if err != nil {
		h.t.Fatal(err)
	}
	in := pipeline.Intent{IntentID: intentID, IntentType: intentType, Target: "consul://service/x", Payload: body, Priority: 1,
		NodeID: node, Sequence: seq, RegistrationAttemptID: uuid.NewSHA1(node, []byte("attempt")), Attempt: attempt}
	env, err := envelope.New(in, envelope.WithCorrelationID(corr), envelope.WithEventType(envelope.EventTypeFromTopic(topics.RegistrationIntents)))
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	h.produceWith(h.intents, node.String(), b, headers)
	return sent{intentID: intentID, corr: corr}
}

func (h *harness) produce(topic, key string, value []byte) {
	h.t.Helper()
	h.produceWith(topic, key, value, nil)
}

func (h *harness) produceWith(topic, key string, value []byte, headers []sarama.RecordHeader) {
	h.t.Helper()
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Headers: headers}
	if value != nil {
		msg.Value = sarama.ByteEncoder(value)
	}
	if _, _, err := h.prod.SendMessage(msg); err != nil {
		h.t.Fatal(err)
	}
}

// sendSnapshot publishes a registration snapshot as the reducer does (the
// bare model as value, the reducer state in its header) for an effect node
// whose api endpoint listens on 127.0.0.1:port, with healthURL as its health
// endpoint if not empty: the consul effect derives its Consul service from
// that state (snapshotPort says on which port), and sendSnapshot returns
// that derivation. Port 0 publishes the bare model without a reducer state:
// a node without a Consul service (nil).
func (h *harness) sendSnapshot(node uuid.UUID, state string, seq int64, port int, healthURL string) *pipeline.ConsulRegisterPayload {
	h.t.Helper()
	n := snapshottest.Node{ID: node, State: state, Sequence: seq, Endpoints: map[string]string{"api": fmt.Sprintf("http://127.0.0.1:%d/api", port)}}
	if healthURL != "" {
		n.Endpoints["health"] = healthURL
	}
	value, header, err := snapshottest.Record(n, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	msg := &sarama.ProducerMessage{Topic: h.snapshots, Key: sarama.StringEncoder(node.String()), Value: sarama.ByteEncoder(value)}
	var derived *pipeline.ConsulRegisterPayload
	if port != 0 {
		msg.Headers = snapshottest.Headers(header)
		if derived, err = consulservice.FromSnapshot(value, header); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, _, err := h.prod.SendMessage(msg); err != nil {
		h.t.Fatal(err)
	}
	return derived
}

// wantHealth is the liveness status the catalog mode writes for a payload.
func wantHealth(p *pipeline.ConsulRegisterPayload) string {
	if p.Health == "" {
		return api.HealthPassing
	}
	return p.Health
}

// snapshotPort is the port of the Consul service derived from a snapshot
// sendSnapshot sent: the health endpoint's, if it has one (spec 4.8), else
// the api endpoint's.
func snapshotPort(t *testing.T, port int, healthURL string) int {
	t.Helper()
	if healthURL == "" {
		return port
	}
	u, err := url.Parse(healthURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *harness) tombstone(node uuid.UUID) { h.produce(h.snapshots, node.String(), nil) }

// registerPayload is the spec 4.8 derivation for an effect node.
func registerPayload(node uuid.UUID, port int, healthURL string) *pipeline.ConsulRegisterPayload {
	id, addr := node.String(), "127.0.0.1"
	p := &pipeline.ConsulRegisterPayload{IntentType: pipeline.ConsulRegister, CorrelationID: uuid.New(), NodeID: &id,
		ServiceID: "onex-effect-" + id, ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"},
		Address: &addr, Port: &port, EventBusConfig: json.RawMessage("null")}
	if healthURL != "" {
		p.HealthCheck = &pipeline.HealthCheck{HTTP: healthURL, Interval: "1s", Timeout: "1s", DeregisterCriticalServiceAfter: "10m"}
	}
	return p
}

func deregisterPayload(node uuid.UUID) *pipeline.ConsulDeregisterPayload {
	return &pipeline.ConsulDeregisterPayload{IntentType: pipeline.ConsulDeregister, CorrelationID: uuid.New(), NodeID: node.String(),
		ServiceID: "onex-effect-" + node.String()}
}

// agentService returns the agent's service or nil.
func (h *harness) agentService(id string) *api.AgentService {
	h.t.Helper()
	s, _, err := h.consul.Agent().Service(id, nil)
	if err != nil {
		if se, ok := err.(api.StatusError); ok && se.Code == 404 {
			return nil
		}
		h.t.Fatalf("agent service %s: %v", id, err)
	}
	return s
}

// service returns the service where the harness's mode keeps it (the
// agent's; in catalog mode the catalog's, on an external node), or nil.
func (h *harness) service(id string) *api.AgentService {
	h.t.Helper()
	if h.mode == effect.ModeAgent {
		return h.agentService(id)
	}
	for _, c := range h.catalog(id) {
		if c.NodeMeta[effect.NodeMetaExternal] == "true" {
			return catalogService(c)
		}
	}
	return nil
}

func catalogService(c *api.CatalogService) *api.AgentService {
	return &api.AgentService{ID: c.ServiceID, Service: c.ServiceName, Tags: c.ServiceTags, Address: c.ServiceAddress,
		Port: c.ServicePort, Meta: c.ServiceMeta}
}

// catalog returns the catalog entries of a service id, on any node.
func (h *harness) catalog(id string) []*api.CatalogService {
	h.t.Helper()
	out, _, err := h.consul.Catalog().Service("onex-effect", "", &api.QueryOptions{Filter: fmt.Sprintf("ServiceID == %q", id)})
	if err != nil {
		h.t.Fatalf("catalog: %v", err)
	}
	return out
}

// catalogNode reports whether the catalog has the node.
func (h *harness) catalogNode(name string) bool {
	h.t.Helper()
	l, _, err := h.consul.Catalog().NodeServiceList(name, nil)
	if err != nil {
		h.t.Fatalf("catalog node %s: %v", name, err)
	}
	return l != nil && l.Node != nil
}

// liveness returns the status of the catalog mode's liveness check on a
// service ("" when it has none) and how many checks the service has.
func (h *harness) liveness(id string) (status string, checks int) {
	h.t.Helper()
	cs, _, err := h.consul.Health().Checks("onex-effect", &api.QueryOptions{Filter: fmt.Sprintf("ServiceID == %q", id)})
	if err != nil {
		h.t.Fatalf("checks of %s: %v", id, err)
	}
	for _, c := range cs {
		if c.CheckID == effect.LivenessCheckID(id) {
			status = c.Status
		}
	}
	return status, len(cs)
}

// passing reports whether a health query for passing instances (what DNS
// and healthy-only discovery answer) returns the service.
func (h *harness) passing(id string) bool {
	h.t.Helper()
	es, _, err := h.consul.Health().Service("onex-effect", "", true, &api.QueryOptions{Filter: fmt.Sprintf("Service.ID == %q", id)})
	if err != nil {
		h.t.Fatalf("passing instances: %v", err)
	}
	return len(es) > 0
}

// envServices lists the services of this test's environment where the
// harness's mode keeps them.
func (h *harness) envServices() map[string]*api.AgentService {
	h.t.Helper()
	filter := fmt.Sprintf("Meta[%q] == %q", "onex-env", h.env)
	if h.mode == effect.ModeAgent {
		m, err := h.consul.Agent().ServicesWithFilter(filter)
		if err != nil {
			h.t.Fatalf("agent services: %v", err)
		}
		return m
	}
	cs, _, err := h.consul.Catalog().Service("onex-effect", "", &api.QueryOptions{
		Filter: fmt.Sprintf("ServiceMeta[%q] == %q and NodeMeta[%q] == %q", "onex-env", h.env, effect.NodeMetaExternal, "true")})
	if err != nil {
		h.t.Fatalf("catalog services: %v", err)
	}
	m := map[string]*api.AgentService{}
	for _, c := range cs {
		m[c.ServiceID] = catalogService(c)
	}
	return m
}

// deregisterByHand removes a service from the agent and from every
// external catalog node, as an operator would (nodes and all).
func (h *harness) deregisterByHand(id string) {
	_ = h.consul.Agent().ServiceDeregister(id)
	cs, _, err := h.consul.Catalog().Service("onex-effect", "", &api.QueryOptions{Filter: fmt.Sprintf("ServiceID == %q", id)})
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.NodeMeta[effect.NodeMetaExternal] == "true" {
			_, _ = h.consul.Catalog().Deregister(&api.CatalogDeregistration{Node: c.Node}, nil)
		}
	}
}

// metric returns the value of a counter or gauge with the given labels
// (0 when absent).
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.svc.Registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// agentPort returns a port free for both TCP and UDP (Consul's serf and DNS
// ports use both), below the kernel's ephemeral range, where the many
// client connections of a test run take theirs, and clear of the fixed
// ports of the local servers (18xxx, 19092, 28xxx, 29092, 38xxx, 39092).
func agentPort(t *testing.T) int {
	t.Helper()
	for range 200 {
		p := 21000 + rand.IntN(7000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return p
	}
	t.Fatal("no free port for a test Consul agent in 21000-27999")
	return 0
}

// testConsul is a Consul dev agent owned by one test, on ports of its own,
// so the test can stop and start it without touching the shared agent.
type testConsul struct {
	bin   string
	args  []string // extra agent arguments
	ports []int
	cmd   *exec.Cmd
	log   string
	node  string
}

func newTestConsul(t *testing.T, args ...string) *testConsul {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (real Consul agent); skipped with -short")
	}
	testkit.ConsulAddr(t) // same skip/fail rule as the shared agent
	cache := os.Getenv("ONEX_CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "onex-fleet")
	}
	bin := filepath.Join(cache, "bin", "consul-1.13.9")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
			t.Fatalf("consul binary %s missing (scripts/infra/consul.sh build)", bin)
		}
		t.Skipf("consul binary %s missing", bin)
	}
	c := &testConsul{bin: bin, args: args, log: filepath.Join(t.TempDir(), "consul.log"), node: "ce-test-" + testkit.Unique()}
	// A port can still be taken between the check and the agent's bind; an
	// agent that gets no leader is started again on other ports.
	var err error
	for range 3 {
		c.ports = c.ports[:0]
		for range 6 {
			c.ports = append(c.ports, agentPort(t))
		}
		if err = c.launch(); err == nil {
			break
		}
		t.Logf("test consul: %v; trying other ports", err)
		c.stop(t)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(c.log)
			lines := strings.Split(string(b), "\n")
			t.Logf("test consul log (last 20 lines):\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	return c
}

func (c *testConsul) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.ports[0]) }

// start starts the agent again on its ports (after stop).
func (c *testConsul) start(t *testing.T) {
	t.Helper()
	if err := c.launch(); err != nil {
		t.Fatal(err)
	}
}

// launch starts the agent and waits for it to elect itself leader.
func (c *testConsul) launch() error {
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	p := c.ports
	c.cmd = exec.Command(c.bin, append([]string{"agent", "-dev", "-node=" + c.node, "-datacenter=dc1",
		"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
		fmt.Sprintf("-http-port=%d", p[0]), fmt.Sprintf("-dns-port=%d", p[1]), fmt.Sprintf("-server-port=%d", p[2]),
		fmt.Sprintf("-serf-lan-port=%d", p[3]), fmt.Sprintf("-serf-wan-port=%d", p[4]), fmt.Sprintf("-grpc-port=%d", p[5]),
		"-log-level=warn"}, c.args...)...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	if err := c.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + c.addr() + "/v1/status/leader")
		if err == nil {
			var leader string
			_ = json.NewDecoder(resp.Body).Decode(&leader)
			resp.Body.Close()
			if leader != "" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("test consul on %s has no leader after 30s", c.addr())
}

// stop kills the agent (a crash, not a graceful leave); -dev keeps its state
// in memory, so a restarted agent comes back empty.
func (c *testConsul) stop(t *testing.T) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.cmd = nil
}
