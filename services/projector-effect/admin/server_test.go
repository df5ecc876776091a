package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/testkit"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/admin"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines with msg.
func (s *syncBuf) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type fixture struct {
	srv     *admin.Server
	client  registryv1.AdminServiceClient
	metrics *admin.Metrics
	log     *syncBuf
}

// serve runs the admin service on a loopback gRPC server, publishing on
// topic, without a producer.
func serve(t *testing.T, topic string) *fixture {
	t.Helper()
	f := &fixture{metrics: admin.NewMetrics(prometheus.NewRegistry()), log: &syncBuf{}}
	f.srv = admin.New(topic, "test", f.metrics, slog.New(slog.NewJSONHandler(f.log, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	f.srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.client = registryv1.NewAdminServiceClient(conn)
	return f
}

func producer(t *testing.T, brokers []string) *bus.Producer {
	t.Helper()
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "admin-test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := bus.NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// The admin service publishes a deregister and an evict on the real broker
// as records operator.Decode accepts: keyed by node id and "evict", the
// envelope id the command id, the correlation id the one returned, who
// asked defaulting to the caller's address; each is logged and counted.
// Before it has a producer it answers UNAVAILABLE and publishes nothing.
func TestAdminPublishesCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Kafka broker; skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.cmd.admin" + testkit.Unique() + ".registration-admin.v1"
	testkit.CreateTopic(t, brokers, topic, 3, nil)
	f := serve(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := uuid.New()

	if _, err := f.client.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: node.String()}); status.Code(err) != codes.Unavailable {
		t.Fatalf("without a producer: %v, want UNAVAILABLE", err)
	}
	f.srv.Attach(producer(t, brokers))

	dereg, err := f.client.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: node.String(), Reason: "decommissioned host"})
	if err != nil {
		t.Fatal(err)
	}
	evict, err := f.client.EvictNodes(ctx, &registryv1.EvictNodesRequest{State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE,
		OlderThan: durationpb.New(time.Hour), Reason: "stale after outage", RequestedBy: "alice@ops-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*registryv1.OperatorCommandResponse{dereg, evict} {
		if r.GetTopic() != topic || uuid.Validate(r.GetCommandId()) != nil || uuid.Validate(r.GetCorrelationId()) != nil {
			t.Errorf("response %v", r)
		}
	}

	recs := testkit.ReadAll(t, brokers, topic, 2, 30*time.Second, false)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	seen := map[operator.Kind]bool{}
	for _, m := range recs {
		env, c, err := operator.Decode(m.Value)
		if err != nil {
			t.Fatalf("record %s: %v", m.Value, err)
		}
		seen[c.Command] = true
		want := dereg
		if c.Command == operator.Evict {
			want = evict
		}
		if c.CommandID.String() != want.GetCommandId() || env.EnvelopeID != c.CommandID || env.CorrelationID == nil ||
			env.CorrelationID.String() != want.GetCorrelationId() || header(m, envelope.HeaderKeyCorrelationID) != want.GetCorrelationId() ||
			header(m, envelope.HeaderKeyMessageID) != want.GetCommandId() {
			t.Errorf("%s: ids of the record (envelope %s, correlation %v, headers %q/%q) differ from the response %v", c.Command,
				env.EnvelopeID, env.CorrelationID, header(m, envelope.HeaderKeyCorrelationID), header(m, envelope.HeaderKeyMessageID), want)
		}
		switch c.Command {
		case operator.Deregister:
			if string(m.Key) != node.String() || *c.NodeID != node || c.Reason != "decommissioned host" ||
				!strings.HasPrefix(c.RequestedBy, "grpc:127.0.0.1:") || time.Since(c.RequestedAt.Time) > time.Minute {
				t.Errorf("deregister key %q: %+v", m.Key, c)
			}
		case operator.Evict:
			if string(m.Key) != admin.EvictKey || *c.State != "active" || c.OlderThan() != time.Hour ||
				c.Reason != "stale after outage" || c.RequestedBy != "alice@ops-1" {
				t.Errorf("evict key %q: %+v", m.Key, c)
			}
		}
	}
	if !seen[operator.Deregister] || !seen[operator.Evict] {
		t.Errorf("records %v", seen)
	}

	logged := f.log.lines(t, "operator command published")
	if len(logged) != 2 {
		t.Fatalf("%d 'published' log lines, want 2", len(logged))
	}
	for _, l := range logged {
		keys := []string{"command", "command_id", "correlation_id", "requested_by", "reason", "topic"}
		if l["command"] == "deregister" {
			keys = append(keys, "node_id")
		} else {
			keys = append(keys, "state", "older_than")
		}
		for _, k := range keys {
			if s, _ := l[k].(string); s == "" {
				t.Errorf("log line %v lacks %s", l, k)
			}
		}
		if l["level"] != "INFO" {
			t.Errorf("log line %v not INFO", l)
		}
	}
	for _, c := range []struct {
		command, outcome string
		want             float64
	}{{"deregister", admin.OutcomeUnavailable, 1}, {"deregister", admin.OutcomePublished, 1}, {"evict", admin.OutcomePublished, 1}} {
		if v := testutil.ToFloat64(f.metrics.Commands.WithLabelValues(c.command, c.outcome)); v != c.want {
			t.Errorf("commands{%s,%s} = %v, want %v", c.command, c.outcome, v, c.want)
		}
	}
}

// A command whose topic the broker does not have is not published:
// UNAVAILABLE, counted and logged as such.
func TestAdminKafkaFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Kafka broker; skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	f := serve(t, "onex.cmd.admin"+testkit.Unique()+".missing.v1")
	f.srv.Attach(producer(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := f.client.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: uuid.NewString()})
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "nothing was published") {
		t.Fatalf("%v, want UNAVAILABLE", err)
	}
	if v := testutil.ToFloat64(f.metrics.Commands.WithLabelValues("deregister", admin.OutcomeUnavailable)); v != 1 {
		t.Errorf("unavailable count %v", v)
	}
	if l := f.log.lines(t, "operator command not published"); len(l) != 1 || l[0]["level"] != "WARN" || l[0]["correlation_id"] == nil {
		t.Errorf("log lines %v", l)
	}
}

// sender records what it is asked to send.
type sender struct{ sent int }

func (s *sender) Send(context.Context, ...*sarama.ProducerMessage) error { s.sent++; return nil }

// Invalid requests are INVALID_ARGUMENT naming the request field, counted,
// and nothing is sent.
func TestAdminRefusesInvalidRequests(t *testing.T) {
	s := &sender{}
	m := admin.NewMetrics(nil)
	srv := admin.New("onex.cmd.platform.registration-admin.v1", "test", m, slog.New(slog.DiscardHandler))
	srv.Attach(s)
	ctx := context.Background()
	hour := durationpb.New(time.Hour)
	long := strings.Repeat("x", operator.MaxReason+1)
	evict := func(mut func(*registryv1.EvictNodesRequest)) *registryv1.EvictNodesRequest {
		r := &registryv1.EvictNodesRequest{State: registryv1.RegistrationState_REGISTRATION_STATE_AWAITING_ACK, OlderThan: hour, RequestedBy: "ops"}
		mut(r)
		return r
	}
	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"node id not a uuid", func() error {
			_, err := srv.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: "node-1"})
			return err
		}, "node_id: not a node UUID"},
		{"nil node id", func() error {
			_, err := srv.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: uuid.Nil.String()})
			return err
		}, "node_id"},
		{"reason too long", func() error {
			_, err := srv.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: uuid.NewString(), Reason: long})
			return err
		}, `"reason"`},
		{"requested_by too long", func() error {
			_, err := srv.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: uuid.NewString(), RequestedBy: long})
			return err
		}, `"requested_by"`},
		{"no state", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.State = 0 }))
			return err
		}, "state: required, one of ACCEPTED, AWAITING_ACK, ACK_RECEIVED, ACTIVE"},
		{"terminal state", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) {
				r.State = registryv1.RegistrationState_REGISTRATION_STATE_LIVENESS_EXPIRED
			}))
			return err
		}, "state: REGISTRATION_STATE_LIVENESS_EXPIRED cannot be evicted"},
		{"no older_than", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.OlderThan = nil }))
			return err
		}, "older_than: required"},
		{"negative older_than", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.OlderThan = durationpb.New(-time.Second) }))
			return err
		}, "older_than: must be at least 0"},
		{"fractional older_than", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.OlderThan = durationpb.New(1500 * time.Millisecond) }))
			return err
		}, "older_than: whole seconds only"},
		{"evict reason too long", func() error {
			_, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.Reason = long }))
			return err
		}, `"reason"`},
	}
	for _, tt := range tests {
		err := tt.call()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.msg) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT with %q", tt.name, err, tt.msg)
		}
	}
	if s.sent != 0 {
		t.Errorf("%d sends for invalid requests", s.sent)
	}
	if v := testutil.ToFloat64(m.Commands.WithLabelValues("deregister", admin.OutcomeInvalid)) +
		testutil.ToFloat64(m.Commands.WithLabelValues("evict", admin.OutcomeInvalid)); v != float64(len(tests)) {
		t.Errorf("invalid count %v, want %d", v, len(tests))
	}
	// A valid evict of zero age is sent; without requested_by (and no
	// gRPC peer) it is marked as such.
	r, err := srv.EvictNodes(ctx, evict(func(r *registryv1.EvictNodesRequest) { r.OlderThan, r.RequestedBy = durationpb.New(0), "" }))
	if err != nil || s.sent != 1 || r.GetCommandId() == "" {
		t.Errorf("valid evict: %v %v (sent %d)", r, err, s.sent)
	}
}
