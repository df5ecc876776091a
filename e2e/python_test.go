package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// The Python interop suite's shape: 20 real nodes of the pinned package in
// four processes of five (so one process can be killed), heartbeating every
// 3 s, well inside the suite's 20 s liveness window.
const (
	pyProcesses  = 4
	pyPerProcess = 5
	pyHeartbeat  = 3 * time.Second
	// pyAckTimeout is the fleet's ack timeout (the default, 30 s): every
	// node must be ACTIVE within it of its start, in the documented start
	// order, which publishes the introspection before the node's ACK
	// listener subscribes.
	pyAckTimeout = 30 * time.Second
	// tick is the orchestrator's runtime tick interval (1 s default).
	tick = time.Second
	// pipelineSlack covers the hops from the reducer's decision to
	// PostgreSQL and Consul (orchestrator routing, effects) on a loaded
	// 2-core machine.
	pipelineSlack = 5 * time.Second
)

// pythonFacing are the topics whose records Python consumers read: what
// Python nodes publish and every record the fleet emits for Python
// consumers. The suite checks each record on them with the package.
var pythonFacing = []string{
	topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked,
	topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived,
	topics.NodeBecameActive, topics.NodeRegistrationAckTimedOut, topics.NodeLivenessExpired,
	topics.NodeRegistrationRejected, topics.NodeRegistrationResult, topics.RequestIntrospection,
	topics.TopicCatalogResponse, topics.TopicCatalogChanged, topics.RegistrationSnapshots,
	topics.DLQEvents, topics.DLQCommands, topics.DLQIntents, topics.DLQPlatform,
}

var dlqTopics = []string{topics.DLQEvents, topics.DLQCommands, topics.DLQIntents, topics.DLQPlatform}

// Suite 9 — real Python ONEX nodes (omnibase-infra from PyPI, pinned by
// interop/python/requirements.lock) register with the fleet unchanged:
// started in the order the package documents, every node is ACTIVE in
// PostgreSQL and Consul within the ack timeout; heartbeats move the
// liveness columns; a killed process's nodes expire and leave Consul
// within the liveness window plus one tick; no Python record is
// dead-lettered; and every record on a Python-facing topic during the suite
// passes the package's own consumer path.
func TestSuite9_PythonNodes(t *testing.T) {
	ctx := context.Background()
	py, err := harness.PythonVenv(ctx, repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	prec, err := harness.NewRecorder(servers.KafkaBrokers, sarama.OffsetNewest, pythonFacing...)
	if err != nil {
		t.Fatal(err)
	}
	defer prec.Close()

	// Records the package must also accept but Python nodes never cause: an
	// ack timeout (a Go node that never acks) and a dead letter (a record
	// that is no envelope). The DLQ check below tells this one apart.
	goNodes := startNodes(t, heartbeat)
	silent := identity(registration.NodeKindEffect, "e2e_python_suite_never_acks")
	goNodes.add(silent, node.Options{NeverAck: true})
	marker := uuid.NewString()
	produce(t, topics.NodeHeartbeat, "", fmt.Sprintf(`{"not_an_envelope": true, "marker": "%s"}`, marker))

	types := []string{"effect", "compute", "reducer", "orchestrator"}
	procs := make([]*harness.PythonNodes, pyProcesses)
	var wg sync.WaitGroup
	errs := make([]error, pyProcesses)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			// Rotate the types so every process runs each type.
			rot := append(slices.Clone(types[i%len(types):]), types[:i%len(types)]...)
			procs[i], errs[i] = harness.StartPythonNodes(sctx, py, repoRoot, servers.KafkaBrokers, harness.PythonNodesOptions{
				Nodes: pyPerProcess, Types: rot, MCPTool: "e2e_py_tool", Version: "1.2.0",
				HeartbeatInterval: pyHeartbeat, NamePrefix: fmt.Sprintf("e2e-py%d", i),
			})
		}()
	}
	wg.Wait()
	for i, p := range procs {
		if p != nil {
			t.Cleanup(p.Close)
		}
		if errs[i] != nil {
			t.Fatalf("python process %d: %v", i, errs[i])
		}
	}
	var all []harness.PythonNode
	byID := map[string]harness.PythonNode{}
	for _, p := range procs {
		for _, n := range p.Nodes() {
			all = append(all, n)
			byID[n.NodeID] = n
		}
	}
	if len(all) != pyProcesses*pyPerProcess {
		t.Fatalf("%d python nodes started, want %d", len(all), pyProcesses*pyPerProcess)
	}
	kinds := map[string]int{}
	mcp := 0
	for _, n := range all {
		kinds[n.NodeType]++
		if n.MCPTool != nil {
			mcp++
		}
	}
	if len(kinds) != 4 || mcp == 0 {
		t.Fatalf("python nodes by type %v, %d with MCP: want all four types and at least one MCP node", kinds, mcp)
	}

	// 1. ACTIVE in PostgreSQL and Consul within the ack timeout of each
	// node's start.
	activeAfter := waitPythonActive(t, all, pyAckTimeout+pipelineSlack)
	var lat []time.Duration
	for _, n := range all {
		d := activeAfter[n.NodeID]
		lat = append(lat, d)
		if d > pyAckTimeout {
			t.Errorf("python node %s (%s) ACTIVE in PostgreSQL and Consul %s after its start, want within the %s ack timeout",
				n.NodeID, n.NodeType, d.Round(time.Millisecond), pyAckTimeout)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	checkPythonConsul(t, all)

	// 2. Heartbeats move last_heartbeat_at and liveness_deadline forward,
	// for every node, over two intervals.
	ids := make([]string, len(all))
	for i, n := range all {
		ids[i] = n.NodeID
	}
	for round := 1; round <= 2; round++ {
		before, err := db.Rows(ctx, ids...)
		if err != nil {
			t.Fatal(err)
		}
		err = harness.Eventually(ctx, 3*pyHeartbeat+pipelineSlack, func(ctx context.Context) error {
			now, err := db.Rows(ctx, ids...)
			if err != nil {
				return err
			}
			var stuck []string
			for _, id := range ids {
				b, a := before[id], now[id]
				if !later(a.LastHeartbeatAt, b.LastHeartbeatAt) || !later(a.LivenessDL, b.LivenessDL) {
					stuck = append(stuck, id)
				}
			}
			if len(stuck) > 0 {
				return fmt.Errorf("round %d: %d python nodes' last_heartbeat_at/liveness_deadline did not move (e.g. %v)", round, len(stuck), first(stuck))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 3. SIGKILL of one process: its nodes become liveness_expired and
	// leave Consul within the liveness window plus one tick of their last
	// heartbeat (plus the pipeline's hops).
	victim := procs[pyProcesses-1]
	var victimIDs []string
	for _, n := range victim.Nodes() {
		victimIDs = append(victimIDs, n.NodeID)
	}
	killed := time.Now()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.Wait(10 * time.Second)
	var observed time.Time
	err = harness.Eventually(ctx, livenessWindow+tick+pipelineSlack+pyHeartbeat, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, victimIDs...)
		if err != nil {
			return err
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		for _, id := range victimIDs {
			if rows[id].State != "liveness_expired" {
				return fmt.Errorf("killed python node %s is %q, want liveness_expired", id, rows[id].State)
			}
			if _, ok := svcs[id]; ok {
				return fmt.Errorf("killed python node %s still in Consul", id)
			}
		}
		observed = time.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Rows(ctx, victimIDs...)
	if err != nil {
		t.Fatal(err)
	}
	var pastDeadline time.Duration
	for _, id := range victimIDs {
		r := rows[id]
		if r.LivenessDL == nil || r.LastHeartbeatAt == nil {
			t.Errorf("killed python node %s: liveness_deadline %v, last_heartbeat_at %v", id, r.LivenessDL, r.LastHeartbeatAt)
			continue
		}
		// The deadline is the node's last heartbeat plus the window; one
		// tick finds it, and the hops carry the expiry to Consul.
		if late := observed.Sub(*r.LivenessDL); late > pastDeadline {
			pastDeadline = late
		}
	}
	if pastDeadline > tick+pipelineSlack {
		t.Errorf("killed python nodes left Consul up to %s after their liveness deadline, want within one tick (+ %s of hops)", pastDeadline.Round(time.Millisecond), pipelineSlack)
	}
	t.Logf("SIGKILL: %d python nodes liveness_expired and out of Consul %s after the kill, at most %s after their deadline",
		len(victimIDs), observed.Sub(killed).Round(time.Millisecond), pastDeadline.Round(time.Millisecond))

	// 4. A restart with a new version: process 0 dies without a word and
	// comes back at once as the same nodes, version 1.3.0. The registry
	// updates them in place: the new version in PostgreSQL, and at no moment
	// missing from Consul.
	restartIDs := nodeIDsOf(procs[0])
	// Node i of a process gets the i-th id and the i-th type; the started
	// lines come in any order, so the types are given in the ids' order.
	var restartTypes []string
	for _, n := range procs[0].Nodes() {
		restartTypes = append(restartTypes, n.NodeType)
	}
	if err := procs[0].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[0].Wait(10 * time.Second)
	sctx, scancel := context.WithTimeout(ctx, 3*time.Minute)
	restarted, err := harness.StartPythonNodes(sctx, py, repoRoot, servers.KafkaBrokers, harness.PythonNodesOptions{
		Nodes: pyPerProcess, Types: restartTypes, MCPTool: "e2e_py_tool", Version: "1.3.0",
		HeartbeatInterval: pyHeartbeat, NamePrefix: "e2e-py0", NodeIDs: restartIDs,
	})
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restarted.Close)
	procs[0] = restarted
	err = harness.Eventually(ctx, pyAckTimeout, func(ctx context.Context) error {
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		for _, id := range restartIDs {
			if _, ok := svcs[id]; !ok {
				// Not retried: a node that is alive must never be missing.
				t.Errorf("restarted python node %s missing from Consul during its restart", id)
			}
		}
		rows, err := db.Rows(ctx, restartIDs...)
		if err != nil {
			return err
		}
		for _, id := range restartIDs {
			if r := rows[id]; r.State != "active" || r.NodeVersion != "1.3.0" {
				return fmt.Errorf("restarted python node %s: %q version %q, want active 1.3.0", id, r.State, r.NodeVersion)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// 5. SIGTERM of the others: each node publishes its shutdown
	// introspection and the process exits cleanly; the registry takes the
	// nodes out of Consul at once and ends their registration.
	var shutIDs []string
	for _, p := range procs[:pyProcesses-1] {
		shutIDs = append(shutIDs, nodeIDsOf(p)...)
	}
	for _, p := range procs[:pyProcesses-1] {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range procs[:pyProcesses-1] {
		if err := p.Wait(60 * time.Second); err != nil {
			t.Errorf("python process %d after SIGTERM: %v\n%s", i, err, p.Stderr(2000))
		}
		for _, n := range p.Nodes() {
			if !p.Stopped(n.NodeID) {
				t.Errorf("python node %s did not report a clean stop", n.NodeID)
			}
		}
	}
	err = harness.Eventually(ctx, 30*time.Second, func(context.Context) error {
		shutdowns := 0
		for _, r := range prec.Records(topics.NodeIntrospection) {
			var p struct {
				NodeID string `json:"node_id"`
				Reason string `json:"reason"`
			}
			if _, err := r.Envelope(&p); err == nil && p.Reason == "shutdown" && byID[p.NodeID].NodeID != "" {
				shutdowns++
			}
		}
		if want := (pyProcesses - 1) * pyPerProcess; shutdowns < want {
			return fmt.Errorf("%d shutdown introspections from python nodes, want %d", shutdowns, want)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	err = harness.Eventually(ctx, tick+pipelineSlack, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, shutIDs...)
		if err != nil {
			return err
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		for _, id := range shutIDs {
			if _, ok := svcs[id]; ok {
				return fmt.Errorf("python node %s shut down but is still in Consul", id)
			}
			if rows[id].State != "liveness_expired" {
				return fmt.Errorf("python node %s shut down but is %q, want liveness_expired", id, rows[id].State)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// 6. A later startup registers a shut-down node again.
	sctx, scancel = context.WithTimeout(ctx, 3*time.Minute)
	again, err := harness.StartPythonNodes(sctx, py, repoRoot, servers.KafkaBrokers, harness.PythonNodesOptions{
		Nodes: 1, Types: []string{procs[1].Nodes()[0].NodeType}, Version: "1.4.0",
		HeartbeatInterval: pyHeartbeat, NamePrefix: "e2e-py1-again", NodeIDs: []string{procs[1].Nodes()[0].NodeID},
	})
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	againNode := again.Nodes()[0]
	waitPythonActive(t, []harness.PythonNode{againNode}, pyAckTimeout)
	if rows, err := db.Rows(ctx, againNode.NodeID); err != nil || rows[againNode.NodeID].NodeVersion != "1.4.0" {
		t.Errorf("python node %s registered again: row %+v (%v), want version 1.4.0", againNode.NodeID, rows[againNode.NodeID], err)
	}
	if err := again.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := again.Wait(60 * time.Second); err != nil {
		t.Errorf("python process after SIGTERM: %v", err)
	}

	// The silent Go node's ack timeout, and a topic catalog answer, so the
	// package checks those forms too.
	catalogCorr := queryTopicCatalog(t)
	err = harness.Eventually(ctx, pyAckTimeout+tick+pipelineSlack, func(context.Context) error {
		if len(prec.Records(topics.NodeRegistrationAckTimedOut, silent.NodeID.String())) == 0 {
			return fmt.Errorf("no ack-timed-out event for the node that never acks")
		}
		for _, r := range prec.Records(topics.TopicCatalogResponse) {
			if strings.Contains(string(r.Value), catalogCorr.String()) {
				return nil
			}
		}
		return fmt.Errorf("no topic catalog response to %s", catalogCorr)
	})
	if err != nil {
		t.Error(err)
	}
	goNodes.stop()

	// 7. No dead letter from Python traffic: the only DLQ records of the
	// suite are the ones of the record the test itself malformed.
	var dlqs, ours int
	for _, topic := range dlqTopics {
		for _, r := range prec.Records(topic) {
			dlqs++
			if strings.Contains(string(r.Value), marker) {
				ours++
				continue
			}
			t.Errorf("dead letter not caused by the test's malformed record: %s[%d]@%d: %.600s", r.Topic, r.Partition, r.Offset, r.Value)
		}
	}
	if ours == 0 {
		t.Errorf("the malformed record the test published was not dead-lettered (%d DLQ records)", dlqs)
	}

	// 8. Every record on a Python-facing topic, through the package.
	var recs []harness.Record
	for _, r := range prec.Records("") {
		// The malformed record is the test's own input, not a record of
		// the fleet or of a Python node; its dead letter is checked.
		if r.Topic == topics.NodeHeartbeat && strings.Contains(string(r.Value), marker) {
			continue
		}
		recs = append(recs, r)
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	sum, fails, err := harness.ValidateWithPython(vctx, py, repoRoot, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fails {
		if i == 20 {
			t.Errorf("... and %d more", len(fails)-20)
			break
		}
		t.Errorf("refused by the Python package: %s", f)
	}
	if sum.Validated != len(recs) {
		t.Errorf("the checker checked %d records, the suite recorded %d", sum.Validated, len(recs))
	}
	for _, topic := range []string{topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived, topics.NodeBecameActive,
		topics.NodeLivenessExpired, topics.NodeRegistrationAckTimedOut, topics.NodeRegistrationInitiated,
		topics.NodeRegistrationResult, topics.RegistrationSnapshots, topics.TopicCatalogResponse} {
		if sum.ByTopic[topic] == 0 {
			t.Errorf("no record of %s was validated: the suite must exercise it", topic)
		}
	}
	beats := 0
	for _, r := range prec.Records(topics.NodeHeartbeat) {
		var p struct {
			NodeID string `json:"node_id"`
		}
		if _, err := r.Envelope(&p); err == nil && byID[p.NodeID].NodeID != "" {
			beats++
		}
	}
	summary := fmt.Sprintf("python nodes: %d started, %d ACTIVE (p50 %s, max %s), heartbeats %d, %d DLQ, %d records validated by the Python models",
		len(all), len(activeAfter), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
		beats, dlqs-ours, sum.Validated-sum.Failed)
	fmt.Println(summary)
	reportSummary(t, summary)
}

// reportSummary also writes the suite's summary line to
// $ONEX_E2E_SUMMARY_FILE, which make test prints at the end: go test shows
// a passing package's output only with -v.
func reportSummary(t *testing.T, line string) {
	path := os.Getenv("ONEX_E2E_SUMMARY_FILE")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("summary file: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Errorf("summary file: %v", err)
	}
}

func nodeIDsOf(p *harness.PythonNodes) []string {
	var ids []string
	for _, n := range p.Nodes() {
		ids = append(ids, n.NodeID)
	}
	return ids
}

// waitPythonActive polls until every node is ACTIVE in PostgreSQL and in
// Consul and returns, per node, how long after its start that was first
// seen.
func waitPythonActive(t *testing.T, nodes []harness.PythonNode, timeout time.Duration) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.NodeID
	}
	err := harness.Eventually(context.Background(), timeout, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, ids...)
		if err != nil {
			return err
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		now := time.Now()
		var missing []string
		for _, n := range nodes {
			if _, done := out[n.NodeID]; done {
				continue
			}
			_, inConsul := svcs[n.NodeID]
			if rows[n.NodeID].State == "active" && inConsul {
				out[n.NodeID] = now.Sub(n.StartedAt)
				continue
			}
			missing = append(missing, fmt.Sprintf("%s(%s: pg %q, consul %v)", n.NodeID, n.NodeType, rows[n.NodeID].State, inConsul))
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d python nodes not ACTIVE in PostgreSQL and Consul: %v", len(missing), len(nodes), first(missing))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPythonConsul checks what Consul shows of the Python nodes: their
// node type in the service, MCP tags for the nodes that declare a tool.
func checkPythonConsul(t *testing.T, nodes []harness.PythonNode) {
	t.Helper()
	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		s := svcs[n.NodeID]
		if s == nil {
			t.Errorf("python node %s not in Consul", n.NodeID)
			continue
		}
		hasMCP := slices.Contains(s.Tags, "mcp-enabled")
		if n.MCPTool != nil {
			tool := mcpToolTag(*n.MCPTool)
			if !hasMCP || !slices.Contains(s.Tags, "mcp-tool:"+tool) {
				t.Errorf("python %s node %s declares MCP tool %q; Consul tags %v lack mcp-enabled/mcp-tool:%s", n.NodeType, n.NodeID, *n.MCPTool, s.Tags, tool)
			}
		} else if hasMCP {
			t.Errorf("python %s node %s declares no MCP tool, Consul tags %v say mcp-enabled", n.NodeType, n.NodeID, s.Tags)
		}
	}
}

// mcpToolTag is the tool name as the Consul tag carries it (spec 4.8):
// lower case, every run of other characters than letters and digits one
// "-", trimmed, at most 63 characters.
func mcpToolTag(name string) string {
	tag := strings.Trim(nonAlnum.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(tag) > 63 {
		tag = tag[:63]
	}
	return tag
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

func later(a, b *time.Time) bool { return a != nil && (b == nil || a.After(*b)) }

// produce publishes one raw record.
func produce(t *testing.T, topic, key, value string) {
	t.Helper()
	produceTo(t, servers.KafkaBrokers, topic, key, value)
}

// queryTopicCatalog asks the orchestrator for the topic catalog as a Python
// client would (an envelope around ModelTopicCatalogQuery) and returns the
// query's correlation id.
func queryTopicCatalog(t *testing.T) uuid.UUID {
	t.Helper()
	corr := uuid.New()
	env, err := envelope.New(map[string]any{
		"correlation_id": corr.String(), "client_id": "e2e-python-suite", "include_inactive": false,
		"topic_pattern": nil, "schema_version": 1,
	}, envelope.WithCorrelationID(corr))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, topics.TopicCatalogQuery, "", string(b))
	return corr
}
