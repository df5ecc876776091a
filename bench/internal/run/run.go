// Package run is `make bench`: it starts the fleet's four services as
// separate processes against the machine's real Kafka, PostgreSQL and
// Consul, measures the servers' raw ceilings, seeds and restarts the
// reducer, drives heartbeats and registrations from simulated nodes,
// profiles the services while they are loaded, and writes the results.
// docs/performance.md explains the method.
package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/bench/internal/consulagent"
	"github.com/omninode/onex-fleet/bench/internal/load"
	"github.com/omninode/onex-fleet/bench/internal/observe"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/profiles"
	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/bench/internal/seed"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Settings are the knobs of a run; the defaults keep `make bench` under
// fifteen minutes on a 2-core machine.
type Settings struct {
	Repo       string `json:"-"`
	ResultsDir string `json:"-"`
	LogDir     string `json:"-"`
	Brokers    []string
	DBURL      string `json:"-"`
	ConsulAddr string

	// CeilingSeconds is how long each raw ceiling runs.
	CeilingSeconds int
	// Nodes is the size of the seeded ACTIVE fleet (heartbeats, restore).
	Nodes int
	// HeartbeatRate is the offered heartbeat rate; HeartbeatSeconds the
	// measured window (after HeartbeatWarmup).
	HeartbeatRate    float64
	HeartbeatSeconds int
	HeartbeatWarmup  int
	// FixedRate and FixedSeconds: the fixed-load latency run.
	FixedRate    float64
	FixedSeconds int
	// CurveRates are the offered loads of the latency curve besides the
	// fixed rate, StepSeconds each, lowest first; the curve stops after the
	// first saturated step at or above the fixed rate.
	CurveRates  []float64
	StepSeconds int
	// SearchSteps is how many steps (StepSeconds each) the saturation
	// search may add to the curve to narrow the saturation rate down;
	// HalfSeconds is the length of the run at half that rate.
	SearchSteps int
	HalfSeconds int
	// Window is the number of registrations in flight in the throughput
	// run, RegistrationSeconds its measured length.
	Window              int
	RegistrationSeconds int
	// HeldServices is how many services Consul already holds when the
	// registration run and the Consul ceilings at "10k" start.
	HeldServices   int
	ProfileSeconds int
	// PollInterval is the projection poll period of the latency observer;
	// ThroughputPollInterval its period during the registration throughput
	// run, which counts completions over 30 s and needs no millisecond
	// timing (observe.Tracker.SetPollInterval says why it is longer).
	PollInterval           time.Duration
	ThroughputPollInterval time.Duration
	// Keep leaves the run's nodes in Kafka, PostgreSQL and Consul.
	Keep bool
	// Micro runs the reducer's Go benchmarks at the end.
	Micro bool
	// Phases, when not empty, limits the run to these phases (ceilings,
	// reducer, heartbeats, latency, registration); heartbeats need reducer.
	Phases map[string]bool `json:",omitempty"`
}

// Defaults returns the settings of `make bench`.
func Defaults() Settings {
	return Settings{
		CeilingSeconds: 10,
		Nodes:          100_000,
		HeartbeatRate:  30_000, HeartbeatSeconds: 35, HeartbeatWarmup: 5,
		FixedRate: 100, FixedSeconds: 20,
		CurveRates:  []float64{25, 50, 200, 400, 700, 1000, 1500, 2000},
		StepSeconds: 8, SearchSteps: 2, HalfSeconds: 20,
		Window: 500, RegistrationSeconds: 30,
		HeldServices:           10_000,
		ProfileSeconds:         10,
		PollInterval:           5 * time.Millisecond,
		ThroughputPollInterval: 50 * time.Millisecond,
		Micro:                  true,
	}
}

// bench is one run in progress.
type bench struct {
	s       Settings
	env     string
	ns      topicns.Namespace // the run's topic namespace (namespace.go)
	log     *slog.Logger
	res     *report.Result
	fleet   *fleet
	pool    *pgxpool.Pool
	consul  *api.Client
	servers []procs.Group
	ids     []uuid.UUID // every node the run created (for the clean-up)
	idsMu   sync.Mutex

	// consulAgent is the run's own Consul agent (the fleet's).
	consulAgent *consulagent.Agent

	// Ceilings, per second: Kafka, PostgreSQL, Consul's catalog API into
	// the empty agent and its agent API into an agent holding
	// HeldServices.
	kafka, pg, catalogEmpty, agent10k float64
	// heldAgent is the agent API ceiling's agent, holding HeldServices and
	// paused between its two measurements (agentCeilingAfter).
	heldAgent       *consulagent.Agent
	heldAgentClient *api.Client
	// seeded is the pre-registered ACTIVE fleet.
	seeded []seed.Node
	// The registration phases' node fleet and observers.
	reg       *load.Registrar
	tracker   *observe.Tracker
	stopNodes context.CancelFunc
	cleanOnce sync.Once

	// extraProfiles are profiles of processes other than the services
	// (the Consul agent), by phase.
	extraMu       sync.Mutex
	extraProfiles map[string]map[string]profiles.Summary
}

// Run runs every phase and writes the results; the returned result is
// also printed by the caller.
func Run(ctx context.Context, s Settings, log *slog.Logger) (*report.Result, error) {
	b := &bench{s: s, log: log, env: "bench" + randomHex(4)}
	start := time.Now()
	b.res = &report.Result{Started: start, Settings: s, Machine: machine(s.Repo), GoalTables: []report.GoalTable{efficiencyGoals()}}
	logDir := filepath.Join(s.LogDir, b.env)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	profDir := filepath.Join(s.ResultsDir, "profiles")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return nil, err
	}
	log.Info("bench: starting", "environment", b.env, "logs", logDir)

	var err error
	b.pool, err = pgxpool.New(ctx, s.DBURL+poolArgs(s.DBURL, 8))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer b.pool.Close()
	// The fleet's Consul is the run's own agent: the catalog holds only
	// what the run registers (plus the services it fills in on purpose),
	// whatever a make run or a test left in the shared one, and the run
	// leaves nothing there.
	bin, err := consulagent.Bin()
	if err != nil {
		return nil, err
	}
	if b.consulAgent, err = consulagent.Start(ctx, bin, logDir, "fleet"); err != nil {
		return nil, err
	}
	defer b.stopConsul()
	s.ConsulAddr = b.consulAgent.Addr
	b.s.ConsulAddr = s.ConsulAddr
	b.res.Settings = b.s
	log.Info("bench: consul agent of the run", "addr", s.ConsulAddr, "pid", b.consulAgent.Pid())
	b.consul, err = ceiling.NewConsulClient(s.ConsulAddr, 16)
	if err != nil {
		return nil, err
	}
	b.servers = serverGroups(s)

	if b.ns, err = runNamespace(b.env); err != nil {
		return nil, err
	}
	if err := provisionTopics(ctx, s.Brokers, b.ns); err != nil {
		_ = deleteTopics(s.Brokers, b.ns)
		return nil, err
	}
	b.fleet, err = newFleet(&s, b.env, b.ns, logDir)
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	if err := b.fleet.start(ctx); err != nil {
		return nil, err
	}
	log.Info("bench: services ready", "took", time.Since(start).Round(time.Millisecond))

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ceilings", b.ceilings},
		{"reducer", b.reducerPhase},
		{"heartbeats", b.heartbeatPhase},
		// Registration throughput before the latency curve: the curve's
		// saturated steps leave backlogs, which must not be in the
		// throughput window (nothing runs after the curve's last step).
		{"registration", b.registrationPhase},
		{"latency", b.latencyPhase},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			return b.res, ctx.Err()
		}
		if len(s.Phases) > 0 && !s.Phases[st.name] {
			continue
		}
		t0 := time.Now()
		log.Info("bench: phase", "name", st.name)
		if err := st.fn(ctx); err != nil {
			b.res.Note("phase %s failed: %v", st.name, err)
			log.Error("bench: phase failed", "name", st.name, "error", err)
			if ctx.Err() != nil {
				return b.res, err
			}
		}
		log.Info("bench: phase done", "name", st.name, "took", time.Since(t0).Round(time.Second))
	}
	b.fleet.stop()
	b.cleanup()
	if s.Micro {
		if err := b.micro(ctx); err != nil {
			b.res.Note("reducer micro-benchmarks failed: %v", err)
		}
	}
	b.res.Seconds = time.Since(start).Seconds()
	return b.res, b.res.WriteFiles(s.ResultsDir)
}

// stopConsul stops the run's Consul agent, unless -keep asked to leave
// the run's nodes in place.
func (b *bench) stopConsul() {
	// The agent API ceiling's agent is stopped whatever -keep says: a
	// paused agent serves nobody.
	if b.heldAgent != nil {
		b.heldAgent.Stop()
		b.heldAgent = nil
	}
	if b.s.Keep {
		b.log.Info("bench: leaving the run's consul agent running (-keep)", "addr", b.consulAgent.Addr, "pid", b.consulAgent.Pid())
		return
	}
	b.consulAgent.Stop()
}

func randomHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

func poolArgs(dsn string, max int) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%spool_max_conns=%d", sep, max)
}

func (b *bench) remember(ids []uuid.UUID) {
	b.idsMu.Lock()
	b.ids = append(b.ids, ids...)
	b.idsMu.Unlock()
}

// serverGroups finds the Kafka, PostgreSQL and Consul processes by the
// ports the run talks to, and the benchmark itself, for CPU accounting.
func serverGroups(s Settings) []procs.Group {
	port := func(hostport string) int {
		if u, err := url.Parse(hostport); err == nil && u.Port() != "" {
			p, _ := strconv.Atoi(u.Port())
			return p
		}
		i := strings.LastIndexByte(hostport, ':')
		p, _ := strconv.Atoi(hostport[i+1:])
		return p
	}
	kafka := procs.ListenerPid(port(s.Brokers[0]))
	pg := procs.ListenerPid(port(s.DBURL))
	consul := procs.ListenerPid(port(s.ConsulAddr))
	self := os.Getpid()
	return []procs.Group{
		{Name: "kafka", Pids: func() []int { return []int{kafka} }},
		{Name: "postgres", Pids: func() []int { return append(procs.Children(pg), pg) }, Reaped: true},
		{Name: "consul", Pids: func() []int { return []int{consul} }},
		{Name: "bench (load + observers)", Pids: func() []int { return []int{self} }},
	}
}

func (b *bench) groups() []procs.Group {
	return append(append([]procs.Group{}, b.servers...), b.serviceGroups()...)
}

// serviceGroups are the four services, one group each (named as in
// serviceNames): the fleet whose CPU the issue #17 figures count.
func (b *bench) serviceGroups() []procs.Group {
	var gs []procs.Group
	for _, name := range serviceNames {
		svc := b.fleet.svc[name]
		gs = append(gs, procs.Group{Name: name, Pids: func() []int { return []int{svc.Pid()} }})
	}
	return gs
}

// measure runs fn and records the phase's CPU use; when profile is set it
// takes CPU profiles of the four services after `after` into the window.
func (b *bench) measure(ctx context.Context, name string, profileAfter time.Duration, fn func(context.Context) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	profs := map[string]profiles.Summary{}
	if profileAfter >= 0 && b.s.ProfileSeconds > 0 {
		for _, svcName := range serviceNames {
			svc := b.fleet.svc[svcName]
			for _, kind := range []string{"profile", "block"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					select {
					case <-ctx.Done():
						return
					case <-time.After(profileAfter):
					}
					file, key, summarize := name+"-"+svcName+".pprof", svcName, profiles.Summarize
					if kind == "block" {
						file, key, summarize = name+"-"+svcName+"-block.pprof", svcName+" (waits)", profiles.SummarizeWaits
					}
					path := filepath.Join(b.s.ResultsDir, "profiles", file)
					if err := svc.Profile(ctx, kind, b.s.ProfileSeconds, path); err != nil {
						b.log.Warn("bench: profile", "service", svcName, "kind", kind, "error", err)
						return
					}
					sum, err := summarize(path, 12)
					if err != nil {
						b.log.Warn("bench: profile", "service", svcName, "kind", kind, "error", err)
						return
					}
					mu.Lock()
					profs[key] = sum
					mu.Unlock()
				}()
			}
		}
	}
	gs := b.groups()
	m0 := b.scrape(ctx)
	a := procs.SampleCPU(gs)
	err := fn(ctx)
	z := procs.SampleCPU(gs)
	m1 := b.scrape(ctx)
	wg.Wait()
	b.dumpMetrics(name)
	ph := report.Phase{Name: name, Seconds: z.At.Sub(a.At).Seconds(), CPU: procs.Use(a, z), Timings: timings(m0, m1)}
	b.extraMu.Lock()
	for k, v := range b.extraProfiles[name] {
		profs[k] = v
	}
	b.extraMu.Unlock()
	if len(profs) > 0 {
		ph.Profiles = profs
	}
	b.res.Phases = append(b.res.Phases, ph)
	return err
}

func machine(repo string) report.Machine {
	m := report.Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// dumpMetrics keeps each service's metrics at the end of a phase in the
// run's log directory, for looking into a figure afterwards.
func (b *bench) dumpMetrics(phase string) {
	for _, name := range serviceNames {
		svc := b.fleet.svc[name]
		if !svc.Running() {
			continue
		}
		resp, err := http.Get("http://" + svc.HTTPAddr + "/metrics")
		if err != nil {
			continue
		}
		if f, err := os.Create(filepath.Join(b.s.LogDir, b.env, "metrics-"+phase+"-"+name+".txt")); err == nil {
			_, _ = io.Copy(f, resp.Body)
			f.Close()
		}
		resp.Body.Close()
	}
}

// scrape reads every running service's metrics.
func (b *bench) scrape(ctx context.Context) map[string]procs.Metrics {
	out := map[string]procs.Metrics{}
	for _, name := range serviceNames {
		if svc := b.fleet.svc[name]; svc.Running() {
			if m, err := svc.Metrics(ctx); err == nil {
				out[name] = m
			}
		}
	}
	return out
}

// timed are the histograms that say how long a service spent per message
// or call, and the label that names the thing.
var timed = []struct{ family, by, what string }{
	{"onex_handler_duration_seconds", "topic", "message of "},
	{"onex_consul_request_duration_seconds", "op", "Consul call "},
	{"onex_projector_batch_apply_seconds", "", "PostgreSQL batch applied"},
	{"onex_reducer_tick_seconds", "", "tick decided"},
}

// timings are the phase's mean time per message or call, per service.
func timings(m0, m1 map[string]procs.Metrics) []report.Timing {
	var out []report.Timing
	for _, name := range serviceNames {
		a, z := m0[name], m1[name]
		if a == nil || z == nil {
			continue
		}
		for _, t := range timed {
			var by []string
			if t.by != "" {
				by = []string{t.by}
			}
			before := a.HistogramsBy(t.family, by...)
			for k, v := range z.HistogramsBy(t.family, by...) {
				n := v[1] - before[k][1]
				if n <= 0 {
					continue
				}
				out = append(out, report.Timing{Service: name, What: t.what + k, Count: n, Mean: (v[0] - before[k][0]) / n * 1000, Unit: "ms"})
			}
		}
		// Batches: inputs per transaction, intents per PostgreSQL batch and
		// writes per Consul transaction (catalog mode's group commit).
		for _, f := range []struct{ family, what, unit string }{
			{"onex_reducer_batch_size", "transaction", "records"},
			{"onex_projector_batch_size", "PostgreSQL batch", "records"},
			{"onex_consul_txn_writes", "Consul transaction", "writes"},
		} {
			s0, c0 := a.Histogram(f.family, nil)
			s1, c1 := z.Histogram(f.family, nil)
			if c1 > c0 {
				out = append(out, report.Timing{Service: name, What: f.what, Count: float64(c1 - c0), Mean: (s1 - s0) / float64(c1-c0), Unit: f.unit})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].What < out[j].What
	})
	return out
}

// drain waits until the services' consumer groups have no lag (or limit
// passed), so that a phase's backlog does not load the next one, and
// returns how long that took. A partition at lag 1 counts as drained: on a
// topic written in transactions (the reducer's events and intents) the
// commit marker after the last record occupies an offset, so an idle
// partition reads 1 (see bus.Lag). Summing the raw lag, no run ever
// drained: every wait ran to its limit, minutes of every make bench.
func (b *bench) drain(ctx context.Context, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit && ctx.Err() == nil {
		var lag float64
		for _, m := range b.scrape(ctx) {
			lag += m.Above("onex_consumer_lag", 1)
		}
		if lag < 1 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start)
}
