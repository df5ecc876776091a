// Package sim plans and runs a simulated fleet of ONEX nodes on pkg/node:
// what `onexctl simulate` runs, and what the end-to-end tests and the
// benchmarks use to know which nodes should end up ACTIVE.
//
// A plan is deterministic: the same seed and options give the same node
// ids, types and faults, so a test can compute the expected outcome
// without talking to the simulator.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// namespace makes simulated node ids (UUIDv5 of seed/index) distinct from
// any other v5 ids the fleet derives.
var namespace = uuid.MustParse("6f1d8c2e-3b4a-5e6f-9a0b-1c2d3e4f5a6b")

// Options describe a simulated fleet.
type Options struct {
	Nodes int
	// Rate is startup introspections per second; 0 starts every node at
	// once.
	Rate float64
	// HeartbeatInterval defaults to the spec's 30 s.
	HeartbeatInterval time.Duration
	// FailAck is the fraction of nodes that never ack (0..1).
	FailAck float64
	// Die is the fraction of nodes that fall silent (no heartbeats, no
	// answers) at a random time between one and three heartbeat intervals
	// after they start (0..1).
	Die float64
	// Seed makes node ids and faults reproducible; the same seed names the
	// same nodes. Empty means "sim".
	Seed string
	// HealthEndpoints serves an HTTP health URL per node (200 while alive,
	// 503 once dead), so Consul's checks of simulated nodes mean something.
	// Off, nodes declare no health endpoint and Consul runs no check for
	// them.
	HealthEndpoints bool
	// HealthAddr is where the health server listens (127.0.0.1:0 unless set).
	HealthAddr string
}

// Validate checks the ranges.
func (o *Options) Validate() error {
	switch {
	case o.Nodes < 0:
		return fmt.Errorf("--nodes must be >= 0, got %d", o.Nodes)
	case o.Rate < 0:
		return fmt.Errorf("--rate must be >= 0, got %v", o.Rate)
	case o.FailAck < 0 || o.FailAck > 1:
		return fmt.Errorf("--fail-ack is a fraction between 0 and 1, got %v", o.FailAck)
	case o.Die < 0 || o.Die > 1:
		return fmt.Errorf("--die is a fraction between 0 and 1, got %v", o.Die)
	case o.HeartbeatInterval < 0:
		return fmt.Errorf("--heartbeat-interval must be positive, got %s", o.HeartbeatInterval)
	}
	return nil
}

func (o *Options) seed() string {
	if o.Seed == "" {
		return "sim"
	}
	return o.Seed
}

func (o *Options) interval() time.Duration {
	if o.HeartbeatInterval <= 0 {
		return node.DefaultHeartbeatInterval
	}
	return o.HeartbeatInterval
}

// Planned is one simulated node and its faults.
type Planned struct {
	Index    int
	Identity node.Identity
	Options  node.Options
}

// Live reports whether the node should end up ACTIVE and stay so: it acks
// and never dies.
func (p *Planned) Live() bool { return !p.Options.NeverAck && p.Options.DieAfter == 0 }

// NodeID is the id of node i of a fleet seeded with seed.
func NodeID(seed string, i int) uuid.UUID {
	if seed == "" {
		seed = "sim"
	}
	return uuid.NewSHA1(namespace, []byte(fmt.Sprintf("%s/%d", seed, i)))
}

var kinds = []registration.NodeKind{
	registration.NodeKindEffect, registration.NodeKindCompute,
	registration.NodeKindReducer, registration.NodeKindOrchestrator,
}

// Plan returns the fleet o describes. healthBase, when not empty, is the
// URL prefix of the health server (see Options.HealthEndpoints).
func Plan(o Options, healthBase string) []Planned {
	h := fnv.New64a()
	h.Write([]byte(o.seed()))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	out := make([]Planned, o.Nodes)
	for i := range out {
		id := NodeID(o.seed(), i)
		kind := kinds[i%len(kinds)]
		p := Planned{Index: i}
		p.Identity = node.Identity{
			NodeID:    id,
			Name:      fmt.Sprintf("sim_%s_%d", kind, i),
			Type:      kind,
			Version:   envelope.SemVer{Major: 1, Minor: i % 3},
			Endpoints: endpoints(healthBase, id),
			Capabilities: registration.NodeCapabilities{
				Processing:     kind == registration.NodeKindCompute,
				Routing:        kind == registration.NodeKindOrchestrator,
				Read:           kind == registration.NodeKindEffect,
				SupportedTypes: []string{"simulated"},
			},
			Role: "simulated",
		}
		// Draw both numbers for every node so that changing one fraction
		// does not reshuffle the other fault.
		ackDraw, dieDraw, when := rng.Float64(), rng.Float64(), rng.Float64()
		p.Options.NeverAck = ackDraw < o.FailAck
		if dieDraw < o.Die {
			p.Options.DieAfter = o.interval() + time.Duration(when*float64(2*o.interval()))
		}
		out[i] = p
	}
	return out
}

// endpoints are a node's: with a health server, its health URL there (so
// Consul checks it); without, only an api URL, so Consul gets no check — an
// agent checking thousands of simulated nodes that cannot answer would only
// load the machine. The api URL is not served.
func endpoints(healthBase string, id uuid.UUID) map[string]string {
	if healthBase == "" {
		return map[string]string{"api": fmt.Sprintf("http://127.0.0.1:9/nodes/%s", id)}
	}
	return map[string]string{"health": fmt.Sprintf("%s/nodes/%s/health", healthBase, id)}
}

// Report is one line of progress.
type Report struct {
	Time             time.Time      `json:"time"`
	Nodes            int            `json:"nodes"`
	Started          int            `json:"started"`
	PerStatus        map[string]int `json:"per_status"`
	Introspections   int64          `json:"introspections"`
	Heartbeats       int64          `json:"heartbeats"`
	Acks             int64          `json:"acks"`
	Reintrospections int64          `json:"reintrospections"`
	PublishErrors    int64          `json:"publish_errors"`
	Final            bool           `json:"final,omitempty"`
}

// String is the human form of a report line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s nodes %d started %d", r.Time.Format("15:04:05"), r.Nodes, r.Started)
	keys := make([]string, 0, len(r.PerStatus))
	for k := range r.PerStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %d", k, r.PerStatus[k])
	}
	fmt.Fprintf(&b, " | heartbeats %d acks %d reintrospections %d publish_errors %d",
		r.Heartbeats, r.Acks, r.Reintrospections, r.PublishErrors)
	return b.String()
}

// Runner runs a planned fleet.
type Runner struct {
	Fleet   node.Config
	Options Options
	// Out receives a report every ReportEvery (and a final one); JSON lines
	// when JSON is set.
	Out         io.Writer
	ReportEvery time.Duration
	JSON        bool
	Log         *slog.Logger
}

// Run starts the fleet, introspects every planned node at the configured
// rate, reports until ctx is done, and stops.
func (r *Runner) Run(ctx context.Context) error {
	o := r.Options
	if err := o.Validate(); err != nil {
		return err
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	r.Fleet.HeartbeatInterval = o.interval()
	r.Fleet.Logger = log
	f, err := node.NewFleet(r.Fleet)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	healthBase := ""
	if o.HealthEndpoints {
		addr := o.HealthAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("simulate: health server: %w", err)
		}
		srv := &http.Server{Handler: healthHandler(f), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(2)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
		go func() { defer wg.Done(); <-ctx.Done(); _ = srv.Close() }()
		healthBase = "http://" + ln.Addr().String()
	}
	plan := Plan(o, healthBase)

	runErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); runErr <- f.Run(ctx) }()
	select {
	case <-f.Ready():
	case err := <-runErr:
		return err
	}

	var startedMu sync.Mutex
	started := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		var gap time.Duration
		if o.Rate > 0 {
			gap = time.Duration(float64(time.Second) / o.Rate)
		}
		next := time.Now()
		for _, p := range plan {
			if gap > 0 {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				next = next.Add(gap)
			}
			if ctx.Err() != nil {
				return
			}
			// Add waits for the broker's ack of the introspection; at high
			// rates that would cap throughput, so Add runs concurrently,
			// bounded by the producer's own buffering.
			wg.Add(1)
			go func(p Planned) {
				defer wg.Done()
				if err := f.Add(ctx, p.Identity, p.Options); err != nil && ctx.Err() == nil {
					log.Warn("simulate: startup introspection failed; the node retries at its next heartbeat",
						"node_id", p.Identity.NodeID, "error", err)
				}
			}(p)
			startedMu.Lock()
			started++
			startedMu.Unlock()
		}
	}()

	every := r.ReportEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	report := func(final bool) {
		if r.Out == nil {
			return
		}
		st := f.Stats()
		startedMu.Lock()
		rep := Report{Time: time.Now().UTC(), Nodes: len(plan), Started: started, PerStatus: map[string]int{},
			Introspections: st.Introspections, Heartbeats: st.Heartbeats, Acks: st.Acks,
			Reintrospections: st.Reintrospections, PublishErrors: st.PublishErrors, Final: final}
		startedMu.Unlock()
		for k, v := range st.PerStatus {
			rep.PerStatus[string(k)] = v
		}
		if r.JSON {
			b, _ := json.Marshal(rep)
			fmt.Fprintf(r.Out, "%s\n", b)
		} else {
			fmt.Fprintln(r.Out, rep.String())
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			report(false)
		case err := <-runErr:
			report(true)
			return err
		case <-ctx.Done():
			err := <-runErr
			report(true)
			return err
		}
	}
}

// healthHandler answers /nodes/<id>/health: 200 for a live node, 503 for
// a dead one, 404 for a stranger.
func healthHandler(f *node.Fleet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rest, ok := strings.CutPrefix(req.URL.Path, "/nodes/")
		idStr, ok2 := strings.CutSuffix(rest, "/health")
		id, err := uuid.Parse(idStr)
		if !ok || !ok2 || err != nil {
			http.NotFound(w, req)
			return
		}
		st, known := f.Status(id)
		switch {
		case !known:
			http.NotFound(w, req)
		case st == node.StatusDead:
			http.Error(w, "dead", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "%s\n", st)
		}
	})
}
