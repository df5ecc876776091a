package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func reducerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reducer-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "reducer")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/omninode/onex-fleet/services/reducer/cmd/reducer").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startOnce is per test: a fresh group is positioned at the input's end once.
var startOnce *sync.Once

type proc struct {
	cmd  *exec.Cmd
	port int
	log  string
}

// startReducer runs the reducer binary as its own process in group env.
func startReducer(t *testing.T, env string) *proc {
	t.Helper()
	startOnce.Do(func() { testkit.StartGroupAtEnd(t, testkit.KafkaBrokers(t), env, topics.ReducerInput) })
	p := &proc{port: freePort(t), log: filepath.Join(t.TempDir(), "reducer.log")}
	f, _ := os.Create(p.log)
	p.cmd = exec.Command(reducerBinary(t))
	contracts, _ := filepath.Abs("../../../../contracts")
	p.cmd.Env = append(os.Environ(), "ONEX_ENVIRONMENT="+env, "ONEX_REDUCER_GROUP="+env,
		fmt.Sprintf("ONEX_HTTP_PORT=%d", p.port), "ONEX_CONTRACTS_DIR="+contracts, "ONEX_DRAIN_TIMEOUT=10", "ONEX_LOG_LEVEL=info")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			lines := strings.Split(string(b), "\n")
			t.Logf("reducer log (last 30 lines):\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("reducer not ready after 60s; log:\n%s", b)
	return nil
}

// assignedPartitions reports how many partitions the process holds, from
// its metrics-free log: the last "partitions assigned" line.
func (p *proc) waitAssigned(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.Contains(lines[i], `"partitions assigned"`) {
				var l struct {
					Claims map[string][]int32 `json:"claims"`
				}
				json.Unmarshal([]byte(lines[i]), &l)
				if len(l.Claims[topics.ReducerInput]) == want {
					return
				}
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("process never held %d partitions", want)
}

// fixtureNode is the node of the recorded introspection, ack and heartbeat
// in both record sets.
const fixtureNode = "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"

type feeder struct {
	t     *testing.T
	p     *bus.Producer
	intro string
	// introCorr is the recorded introspection's correlation id, replaced
	// by a per-node one.
	introCorr string
	ack       string
	hb        string
	// hbAt is the recorded heartbeat's payload timestamp, replaced by the
	// feed's time.
	hbAt     string
	sequence int
}

// newFeeder feeds the older fixtures (../shared/fixtures).
func newFeeder(t *testing.T, brokers []string) *feeder {
	return newFeederFrom(t, brokers, testkit.WireSet{Name: "fixtures", Dir: testkit.FixturesDir(t)})
}

// newFeederFrom feeds the recorded introspection, ack and heartbeat of set
// (testkit.WireSets: the current package's goldens or the older fixtures),
// rewritten per node.
func newFeederFrom(t *testing.T, brokers []string, set testkit.WireSet) *feeder {
	read := func(name string) string { return strings.TrimSpace(string(set.Read(t, name))) }
	f := &feeder{t: t, intro: read("introspection-effect.json"), ack: read("ack.json"), hb: read("heartbeat.json")}
	var v struct {
		Payload struct {
			NodeID        string `json:"node_id"`
			CorrelationID string `json:"correlation_id"`
			Timestamp     string `json:"timestamp"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(f.intro), &v); err != nil || v.Payload.NodeID != fixtureNode || v.Payload.CorrelationID == "" {
		t.Fatalf("%s introspection: node %q correlation %q: %v", set.Name, v.Payload.NodeID, v.Payload.CorrelationID, err)
	}
	f.introCorr = v.Payload.CorrelationID
	if err := json.Unmarshal([]byte(f.hb), &v); err != nil || v.Payload.NodeID != fixtureNode || v.Payload.Timestamp == "" {
		t.Fatalf("%s heartbeat: node %q timestamp %q: %v", set.Name, v.Payload.NodeID, v.Payload.Timestamp, err)
	}
	f.hbAt = v.Payload.Timestamp
	if !strings.Contains(f.ack, fixtureNode) {
		t.Fatalf("%s ack is not node %s's", set.Name, fixtureNode)
	}

	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "reducer-test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := bus.NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f.p = p
	return f
}

func (f *feeder) msg(node uuid.UUID, topic, value string, at time.Time) *sarama.ProducerMessage {
	b, _ := json.Marshal(pipeline.ReducerInput{Topic: topic, ReceivedAt: pipeline.T(at), Value: json.RawMessage(value)})
	return &sarama.ProducerMessage{Topic: topics.ReducerInput, Key: sarama.StringEncoder(node.String()), Value: sarama.ByteEncoder(b)}
}

func (f *feeder) send(msgs []*sarama.ProducerMessage) {
	for len(msgs) > 0 {
		n := min(len(msgs), 500)
		if err := f.p.Send(context.Background(), msgs[:n]...); err != nil {
			f.t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

var base = time.Now().UTC().Truncate(time.Second)

func (f *feeder) introspections(nodes []uuid.UUID) []*sarama.ProducerMessage {
	var out []*sarama.ProducerMessage
	for _, n := range nodes {
		v := strings.ReplaceAll(f.intro, fixtureNode, n.String())
		v = strings.ReplaceAll(v, f.introCorr, uuid.NewSHA1(n, []byte("corr")).String())
		out = append(out, f.msg(n, topics.NodeIntrospection, v, base))
	}
	return out
}

func (f *feeder) acks(nodes []uuid.UUID) []*sarama.ProducerMessage {
	var out []*sarama.ProducerMessage
	for _, n := range nodes {
		out = append(out, f.msg(n, topics.NodeRegistrationAcked, strings.ReplaceAll(f.ack, fixtureNode, n.String()), base.Add(time.Second)))
	}
	return out
}

func (f *feeder) heartbeats(nodes []uuid.UUID, k int) []*sarama.ProducerMessage {
	var out []*sarama.ProducerMessage
	ts := base.Add(time.Duration(10+k) * time.Second).Format("2006-01-02T15:04:05.000000Z")
	for _, n := range nodes {
		v := strings.ReplaceAll(f.hb, fixtureNode, n.String())
		v = strings.ReplaceAll(v, f.hbAt, ts)
		out = append(out, f.msg(n, topics.NodeHeartbeat, v, base.Add(time.Duration(10+k)*time.Second)))
	}
	return out
}

func nodeSet(n int) ([]uuid.UUID, map[string]bool) {
	ids := make([]uuid.UUID, n)
	set := map[string]bool{}
	for i := range ids {
		ids[i] = uuid.New()
		set[ids[i].String()] = true
	}
	return ids, set
}

// outputs counts, for our nodes only, the committed records on every output
// topic: events by topic, intents by type, and the newest snapshot per node.
type outputs struct {
	events    map[string]int
	intents   map[string]int
	snapshots map[string]*decide.NodeState
	perNode   map[string]map[string]int // node -> topic/intent -> count
}

func outputTopics() []string {
	tps := []string{topics.RegistrationIntents, topics.RegistrationSnapshots}
	for _, k := range []decide.EventKind{decide.EventInitiated, decide.EventAccepted, decide.EventAckReceived, decide.EventBecameActive, decide.EventAckTimedOut, decide.EventLivenessExpired, decide.EventRejected} {
		tps = append(tps, wire.EventTopic(k))
	}
	return tps
}

// outputEnds returns the end offsets of the output topics now: a test
// collects its outputs from there, so it reads only what was written after
// it started, however large the shared topics have grown (a `make bench`
// run writes gigabytes to them).
func outputEnds(t *testing.T, brokers []string) map[string]map[int32]int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ends := map[string]map[int32]int64{}
	for _, tp := range outputTopics() {
		parts, err := client.Partitions(tp)
		if err != nil {
			t.Fatal(err)
		}
		ends[tp] = map[int32]int64{}
		for _, p := range parts {
			if ends[tp][p], err = client.GetOffset(tp, p, sarama.OffsetNewest); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ends
}

func collectOutputs(t *testing.T, brokers []string, from map[string]map[int32]int64, ours map[string]bool, until func(outputs) bool, timeout time.Duration) outputs {
	t.Helper()
	cfg := testkit.AdminConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := outputs{events: map[string]int{}, intents: map[string]int{}, snapshots: map[string]*decide.NodeState{}, perNode: map[string]map[string]int{}}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, tp := range outputTopics() {
		parts, err := c.Partitions(tp)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			pc, err := c.ConsumePartition(tp, p, from[tp][p])
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func(tp string, pc sarama.PartitionConsumer) {
				defer wg.Done()
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case m := <-pc.Messages():
						key := string(m.Key)
						if !ours[key] {
							continue
						}
						mu.Lock()
						if o.perNode[key] == nil {
							o.perNode[key] = map[string]int{}
						}
						switch tp {
						case topics.RegistrationSnapshots:
							st, err := wire.RestoreState(m.Value, pipeline.SnapshotState(m.Headers))
							if err == nil && st != nil {
								o.snapshots[key] = st
							}
						case topics.RegistrationIntents:
							// Either form (the reducer writes protobuf); one
							// that does not decode is missing from the counts.
							if r, err := pipeline.DecodeIntentRecord(m.Headers, m.Value); err == nil {
								o.intents[r.Intent.IntentType]++
								o.perNode[key][r.Intent.IntentType]++
							}
						default:
							o.events[tp]++
							o.perNode[key][tp]++
						}
						mu.Unlock()
					}
				}
			}(tp, pc)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		mu.Lock()
		done := until(o)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything extra (a duplicate) shows up now
	cancel()
	wg.Wait()
	return o
}

// allActive is true once every node became ACTIVE and the postgres updates
// of its ack and of its heartbeats have been emitted. Heartbeats write no
// snapshot: the state they leave is checked by restoring it
// (checkExactlyOnce).
func allActive(ours map[string]bool, heartbeats int) func(outputs) bool {
	return func(o outputs) bool {
		return o.events[topics.NodeBecameActive] >= len(ours) && o.intents[pipeline.PostgresUpdate] >= len(ours)*(1+heartbeats)
	}
}

// checkExactlyOnce checks the events and intents of n nodes that
// registered and sent heartbeats, and that the state the reducer's restore
// rebuilds for group from Kafka (snapshots, liveness checkpoint, heartbeat
// replay) is each node's state after all of them.
func checkExactlyOnce(t *testing.T, brokers []string, group string, o outputs, ours map[string]bool, heartbeats int) {
	t.Helper()
	n := len(ours)
	for _, tp := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived, topics.NodeBecameActive} {
		if o.events[tp] != n {
			t.Errorf("%s: %d events for %d nodes (want exactly one each)", tp, o.events[tp], n)
		}
	}
	// consul.register twice a node: at its introspection (health warning)
	// and at its ack (passing).
	wantIntents := map[string]int{pipeline.PostgresUpsert: n, pipeline.ConsulRegister: 2 * n, pipeline.PostgresUpdate: n * (1 + heartbeats)}
	for k, v := range wantIntents {
		if o.intents[k] != v {
			t.Errorf("intent %s: %d, want %d", k, o.intents[k], v)
		}
	}
	wantSeq := int64(4 + heartbeats)
	// A heartbeat decided in the batch of the node's ack is in the ack's
	// snapshot; later ones write none.
	lastSnapshot := 0
	for id := range ours {
		s := o.snapshots[id]
		if s == nil || s.State != decide.Active || s.Sequence < 4 || s.Sequence > wantSeq {
			t.Errorf("node %s: snapshot %+v, want active with a sequence in [4, %d]", id, s, wantSeq)
			break
		}
		if s.Sequence == wantSeq {
			lastSnapshot++
		}
	}
	if lastSnapshot == len(ours) {
		t.Errorf("every node's last heartbeat wrote a snapshot")
	}
	restored := restoredStates(t, brokers, group, ours)
	for id := range ours {
		s := restored[id]
		if s == nil || s.State != decide.Active || s.Sequence != wantSeq || s.LastHeartbeatAt == nil {
			t.Errorf("node %s: restored %+v, want active with sequence %d and a heartbeat", id, s, wantSeq)
			break
		}
	}
}

// restoredStates rebuilds the state of every partition as the reducer of
// group would on restore, with the reducer's own functions, and returns
// the states of the nodes in ours.
func restoredStates(t *testing.T, brokers []string, group string, ours map[string]bool) map[string]*decide.NodeState {
	t.Helper()
	ctx := context.Background()
	cfg := testkit.AdminConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topics.ReducerInput)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topics.ReducerInput: parts})
	if err != nil {
		t.Fatal(err)
	}
	pc := testkit.AdminConfig()
	pc.Producer.Idempotent = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Producer.Return.Successes = true
	pc.Net.MaxOpenRequests = 1
	pc.Producer.Transaction.ID = group + "-restore-check"
	prod, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	out := map[string]*decide.NodeState{}
	for _, p := range parts {
		marks, err := writeMarkers(prod, p, int32(len(parts)), topics.RegistrationSnapshots, topics.RegistrationLiveness)
		if err != nil {
			t.Fatal(err)
		}
		part, _, err := restore(ctx, client, topics.RegistrationSnapshots, p, marks[0])
		if err != nil {
			t.Fatal(err)
		}
		live, from, err := restoreLiveness(ctx, client, topics.RegistrationLiveness, p, marks[1])
		if err != nil {
			t.Fatal(err)
		}
		live.Apply(part)
		to := committed.GetBlock(topics.ReducerInput, p).Offset
		if _, _, err := replayHeartbeats(ctx, client, topics.ReducerInput, p, from, to, part, live, decide.DefaultParams()); err != nil {
			t.Fatal(err)
		}
		part.Each(func(st *decide.NodeState) {
			if ours[st.NodeID.String()] {
				out[st.NodeID.String()] = st
			}
		})
	}
	return out
}

// kill -9 the reducer mid-load and restart it: every input is reflected
// exactly once in events, intents and snapshots.
// Once with the current package's records (golden), once with the older
// fixtures.
func TestExactlyOnceAcrossKill9(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { exactlyOnceAcrossKill9(t, set) })
	}
}

func exactlyOnceAcrossKill9(t *testing.T, set testkit.WireSet) {
	brokers := testkit.KafkaBrokers(t)
	env := "reducertest" + testkit.Unique()
	startOnce = &sync.Once{}
	f := newFeederFrom(t, brokers, set)
	const n, hbs = 300, 3
	ids, ours := nodeSet(n)
	from := outputEnds(t, brokers)

	first := startReducer(t, env)
	var all []*sarama.ProducerMessage
	all = append(all, f.introspections(ids)...)
	all = append(all, f.acks(ids)...)
	// The last heartbeat round is held back until the restarted reducer
	// has made every node ACTIVE: it then lands in batches of its own, so
	// checkExactlyOnce can tell heartbeats write no snapshot. Fed with the
	// rest, a restart that replays everything in one batch per partition
	// puts every heartbeat in its node's ack batch.
	for k := 0; k < hbs-1; k++ {
		all = append(all, f.heartbeats(ids, k)...)
	}
	// Feed in the background so the kill lands while input is flowing.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(all); i += 100 {
			f.send(all[i:min(i+100, len(all))])
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(400 * time.Millisecond)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	<-done
	startReducer(t, env)
	collectOutputs(t, brokers, from, ours, allActive(ours, hbs-1), 90*time.Second)
	f.send(f.heartbeats(ids, hbs-1))
	o := collectOutputs(t, brokers, from, ours, allActive(ours, hbs), 90*time.Second)
	checkExactlyOnce(t, brokers, env, o, ours, hbs)
	t.Logf("events %v intents %v snapshots %d", o.events, o.intents, len(o.snapshots))
}

// runtime_host introspections (valid, not projectable) are answered with
// the rejected event and no intent, and their rejected state survives a
// kill -9: after the restart the same introspections are answered the same
// way from the restored state (sequence 2), heartbeats change nothing, and
// an effect introspection then registers the nodes.
func TestRuntimeHostRejectedAcrossRestart(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	env := "reducertest" + testkit.Unique()
	startOnce = &sync.Once{}
	f := newFeeder(t, brokers)
	const n = 30
	ids, ours := nodeSet(n)
	from := outputEnds(t, brokers)
	hostIntro := f.intro
	f.intro = strings.Replace(f.intro, `"node_type": "effect"`, `"node_type": "runtime_host"`, 1)
	if f.intro == hostIntro {
		t.Fatal("the recorded introspection has no effect node_type")
	}
	allIn := func(st decide.State, seq int64) func(outputs) bool {
		return func(o outputs) bool {
			if len(o.snapshots) < n {
				return false
			}
			for _, s := range o.snapshots {
				if s.State != st || s.Sequence < seq {
					return false
				}
			}
			return true
		}
	}

	first := startReducer(t, env)
	f.send(f.introspections(ids))
	o := collectOutputs(t, brokers, from, ours, allIn(decide.Rejected, 1), 60*time.Second)
	if got := o.events[topics.NodeRegistrationRejected]; got != n || len(o.intents) != 0 || len(o.events) != 1 {
		t.Fatalf("first introspections: events %v intents %v, want %d rejected events only", o.events, o.intents, n)
	}
	for id, s := range o.snapshots {
		if s.State != decide.Rejected || s.NodeType != "runtime_host" || s.Sequence != 1 {
			t.Fatalf("node %s: snapshot %+v", id, s)
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()

	startReducer(t, env)
	f.send(f.introspections(ids)) // the same records again
	f.hb = strings.Replace(f.hb, `"node_type": "effect"`, `"node_type": "runtime_host"`, 1)
	f.send(f.heartbeats(ids, 0)) // a rejected node's heartbeats are ignored
	o = collectOutputs(t, brokers, from, ours, allIn(decide.Rejected, 2), 90*time.Second)
	if got := o.events[topics.NodeRegistrationRejected]; got != 2*n || len(o.intents) != 0 {
		t.Fatalf("after restart: events %v intents %v, want %d rejected events and no intent", o.events, o.intents, 2*n)
	}
	for id, s := range o.snapshots {
		if s.State != decide.Rejected || s.Sequence != 2 {
			t.Fatalf("node %s after restart: snapshot %+v, want rejected with sequence 2 (restored)", id, s)
		}
	}

	f.intro = hostIntro
	f.send(f.introspections(ids))
	o = collectOutputs(t, brokers, from, ours, allIn(decide.AwaitingAck, 4), 60*time.Second)
	if o.events[topics.NodeRegistrationInitiated] != n || o.intents[pipeline.PostgresUpsert] != n || o.intents[pipeline.ConsulRegister] != n {
		t.Fatalf("effect introspections after rejection: events %v intents %v", o.events, o.intents)
	}
}

// Two instances split the partitions; when one leaves, the other takes its
// partitions and their state, and nothing is lost or duplicated; once with
// the current package's records (golden), once with the older fixtures.
func TestRebalanceMovesState(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { rebalanceMovesState(t, set) })
	}
}

func rebalanceMovesState(t *testing.T, set testkit.WireSet) {
	brokers := testkit.KafkaBrokers(t)
	env := "reducertest" + testkit.Unique()
	startOnce = &sync.Once{}
	f := newFeederFrom(t, brokers, set)
	const n = 200
	ids, ours := nodeSet(n)
	from := outputEnds(t, brokers)

	a := startReducer(t, env)
	a.waitAssigned(t, 6)
	f.send(f.introspections(ids))
	b := startReducer(t, env)
	b.waitAssigned(t, 3)
	f.send(f.acks(ids)) // half of these land on b, for nodes a registered
	time.Sleep(2 * time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("instance a did not drain cleanly: %v", err)
	}
	b.waitAssigned(t, 6)
	f.send(f.heartbeats(ids, 0)) // all on b now, half for state a held
	o := collectOutputs(t, brokers, from, ours, allActive(ours, 1), 90*time.Second)
	checkExactlyOnce(t, brokers, env, o, ours, 1)
}

// Restore reads both record layouts from the broker: the state in the
// x-onex-reducer-state header (what the reducer writes) and the state in
// the value (a record recorded from the reducer before the header, which a
// compacted topic keeps until the node's next snapshot); a tombstone
// removes its node, and a node's latest record wins whatever its layout.
func TestRestoreBothRecordLayouts(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.reducertest" + testkit.Unique() + ".registration-snapshots.v1"
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	old, err := os.ReadFile("../../snapshot/testdata/record-state-in-value.json")
	if err != nil {
		t.Fatal(err)
	}
	old = []byte(strings.TrimSpace(string(old)))
	legacyID := uuid.MustParse("5b0f3c2e-9a41-4c7d-8e2f-1d6a7b3c9e05")
	now := time.Now().UTC()
	node := func(seq int64) *decide.NodeState {
		return &decide.NodeState{NodeID: uuid.New(), State: decide.Active, NodeType: "effect", NodeVersion: "1.0.0",
			Capabilities: json.RawMessage(`{"read":true}`), Endpoints: decide.Endpoints{{Name: "health", URL: "http://n:8085/health"}},
			AttemptID: uuid.New(), CorrelationID: uuid.New(), RegisteredAt: now, LivenessDeadline: &now, LastStateChangeAt: now, Sequence: seq}
	}
	current, removed, upgraded := node(4), node(5), node(6)
	upgradedOld := *upgraded
	upgradedOld.Sequence, upgradedOld.State = 2, decide.AwaitingAck
	msg := func(st *decide.NodeState, legacy bool) *sarama.ProducerMessage {
		rec, err := wire.Snapshot(st, now)
		if err != nil {
			t.Fatal(err)
		}
		rec.Topic = topic
		m := rec.ProducerMessage("restore-test")
		if legacy { // the previous layout: state (and Consul derivation) in the value
			v := strings.TrimSuffix(string(rec.Value), "}") + `,"consul":null,"reducer_state":` + string(rec.Headers[0].Value) + `}`
			m.Value, m.Headers = sarama.StringEncoder(v), nil
		}
		return m
	}
	msgs := []*sarama.ProducerMessage{
		{Topic: topic, Key: sarama.StringEncoder(legacyID.String()), Value: sarama.ByteEncoder(old)},
		msg(current, false),
		msg(removed, false),
		{Topic: topic, Key: sarama.StringEncoder(removed.NodeID.String())}, // tombstone
		msg(&upgradedOld, true),
		msg(upgraded, false),
	}
	cfg, _ := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "restore-test"})
	prod, err := bus.NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	rc := testkit.AdminConfig()
	tuneRestore(rc)
	client, err := sarama.NewClient(brokers, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	end, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	part, records, err := restore(context.Background(), client, topic, 0, end-1)
	if err != nil {
		t.Fatal(err)
	}
	if records != len(msgs) || part.Len() != 3 {
		t.Fatalf("restored %d nodes from %d records, want 3 from %d", part.Len(), records, len(msgs))
	}
	if st := part.Get(legacyID); st == nil || st.State != decide.Active || st.Sequence != 3 || st.MCPTool == nil || *st.MCPTool != "route-things" ||
		st.LastHeartbeatAt == nil || st.ConsulRegistration().ServiceID != "onex-orchestrator-"+legacyID.String() {
		t.Errorf("recorded legacy record restored to %+v", st)
	}
	if st := part.Get(current.NodeID); st == nil || st.Sequence != 4 || string(st.Capabilities) != `{"read":true}` {
		t.Errorf("current record restored to %+v", st)
	}
	if st := part.Get(removed.NodeID); st != nil {
		t.Errorf("tombstoned node restored: %+v", st)
	}
	if st := part.Get(upgraded.NodeID); st == nil || st.Sequence != 6 || st.State != decide.Active {
		t.Errorf("node whose legacy record was followed by a current one restored to %+v", st)
	}
}

// Restoring 100,000 nodes of state from the snapshot topic, timed. The
// snapshots go to a test-owned topic so the shared one stays small.
func TestRestore100kNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("restore of 100k nodes is not a short test")
	}
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.reducertest" + testkit.Unique() + ".registration-snapshots.v1"
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	cfg, _ := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "restore-test"})
	prod, err := bus.NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 100_000
	now := time.Now().UTC()
	var batch []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		id := uuid.New()
		st := &decide.NodeState{NodeID: id, State: decide.Active, NodeType: "effect", NodeVersion: "1.0.0",
			Capabilities: json.RawMessage(`{"read":true,"processing":true}`), Endpoints: decide.Endpoints{{Name: "health", URL: "http://n:8085/health"}},
			AttemptID: uuid.New(), CorrelationID: uuid.New(), RegisteredAt: now, LivenessDeadline: &now, LastStateChangeAt: now, Sequence: 4}
		rec, err := wire.Snapshot(st, now)
		if err != nil {
			t.Fatal(err)
		}
		rec.Topic = topic
		batch = append(batch, rec.ProducerMessage("restore-test"))
		if len(batch) == 1000 {
			if err := prod.Send(context.Background(), batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	rc := testkit.AdminConfig()
	tuneRestore(rc)
	client, err := sarama.NewClient(brokers, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	end, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	part, records, err := restore(context.Background(), client, topic, 0, end-1)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if part.Len() != n || records != n || part.Count(decide.Active) != n {
		t.Fatalf("restored %d nodes from %d records, want %d", part.Len(), records, n)
	}
	t.Logf("restored %d nodes in %s (%.0f nodes/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}
