package run

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Service names, in start order.
const (
	Orchestrator = "registration-orchestrator"
	Reducer      = "reducer"
	Projector    = "projector-effect"
	ConsulEffect = "consul-effect"
)

var serviceNames = []string{Orchestrator, Reducer, Projector, ConsulEffect}

// fleet is the four services of one run.
type fleet struct {
	svc map[string]*procs.Service
}

// newFleet prepares the services with the run's environment and topic
// namespace. Every service gets its own consumer groups (the run's
// environment names them) and topics (its namespace), so a `make run` or a
// test elsewhere on the machine does not share partitions or records with
// the benchmark.
func newFleet(s *Settings, runEnv string, ns topicns.Namespace, logDir string) (*fleet, error) {
	f := &fleet{svc: map[string]*procs.Service{}}
	common := []string{
		"ONEX_ENVIRONMENT=" + runEnv,
		topicns.EnvVar + "=" + ns.String(),
		// Fresh groups start at the end of their topics (which are the
		// run's own and new anyway): nothing before the start is the
		// benchmark's work.
		"ONEX_CONSUMER_START=newest",
		"ONEX_CONTRACTS_DIR=" + filepath.Join(s.Repo, "contracts"),
		"ONEX_PPROF=true",
		"ONEX_DRAIN_TIMEOUT=10",
		"ONEX_LOG_LEVEL=INFO",
		"OMNIBASE_ENV_FILE=/dev/null",
		// The run's own Consul agent (see Run).
		"CONSUL_HTTP_ADDR=" + s.ConsulAddr,
	}
	for _, name := range serviceNames {
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, err
		}
		vars := append([]string{}, common...)
		switch name {
		case Orchestrator:
			// No start-up re-introspection request: the run's nodes
			// introspect when each phase starts them, and a request would
			// put their answers into the measurement.
			// The reducer's liveness window (below): ingress skips
			// heartbeats older than it.
			vars = append(vars, "ONEX_REQUEST_INTROSPECTION_ON_START=false", "ONEX_LIVENESS_WINDOW_SECONDS=3600")
		case Reducer:
			// Nodes of earlier phases stop heartbeating when their phase
			// ends; they must not expire (and be deregistered) during the
			// later phases. (The snapshot topic is the run's own, on its
			// namespace: no node of other runs is restored. See
			// docs/performance.md, "Method".)
			vars = append(vars, "ONEX_LIVENESS_INTERVAL_SECONDS=3600", "ONEX_LIVENESS_WINDOW_SECONDS=3600")
		case Projector:
			grpc, err := procs.FreeAddr()
			if err != nil {
				return nil, err
			}
			vars = append(vars, "ONEX_GRPC_ADDR="+grpc, "ONEX_PROJECTOR_EFFECT_GROUP="+group(runEnv, Projector))
		case ConsulEffect:
			// Anti-entropy passes only at start (the run's snapshot topic
			// is empty then): later it would register the seeded fleet,
			// which is not in Consul on purpose. The catalog mode, the
			// default, said explicitly: the figures are the catalog mode's.
			vars = append(vars, "ONEX_CONSUL_REGISTRATION_MODE=catalog",
				"ONEX_CONSUL_RECONCILE_INTERVAL=3600", "ONEX_CONSUL_EFFECT_GROUP="+group(runEnv, ConsulEffect))
		}
		f.svc[name] = &procs.Service{
			Name: name, Bin: filepath.Join(s.Repo, "bin", name), Env: vars, HTTPAddr: addr,
			LogPath: filepath.Join(logDir, name+".log"),
		}
	}
	return f, nil
}

func group(env, svc string) string { return env + ".onex-fleet." + svc + ".consume.1.0.0" }

// snapshotTopic is the run's snapshot topic (reducer and consul effect).
func (b *bench) snapshotTopic() string { return b.ns.Physical(topics.RegistrationSnapshots) }

func adminConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = bus.KafkaVersion
	c.ClientID = "bench-admin"
	return c
}

// start starts every service and waits until all are ready.
func (f *fleet) start(ctx context.Context) error {
	for _, name := range serviceNames {
		if err := f.svc[name].Start(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, name := range serviceNames {
		if err := f.svc[name].WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (f *fleet) stop() {
	for i := len(serviceNames) - 1; i >= 0; i-- {
		_ = f.svc[serviceNames[i]].Stop(20 * time.Second)
	}
}

// logLine is one JSON log line of a service.
type logLine struct {
	Time      time.Time `json:"time"`
	Msg       string    `json:"msg"`
	Partition *int      `json:"partition"`
	Nodes     int       `json:"nodes"`
	TookMS    int64     `json:"took_ms"`
}

// readLog returns the log lines written after offset.
func readLog(path string, offset int64) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return nil, err
	}
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
