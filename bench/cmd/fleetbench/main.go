// Command fleetbench is `make bench`: the fleet's performance figures,
// measured against the real servers, next to the servers' own ceilings.
// See docs/performance.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/omninode/onex-fleet/bench/internal/run"
	"github.com/omninode/onex-fleet/pkg/bus"
)

func main() { os.Exit(realMain()) }

func realMain() int {
	s := run.Defaults()
	repo, _ := os.Getwd()
	flag.StringVar(&s.Repo, "repo", repo, "repository root (bin/ and contracts/)")
	flag.StringVar(&s.ResultsDir, "results", filepath.Join(repo, "bench", "results"), "where results are written")
	flag.IntVar(&s.Nodes, "nodes", s.Nodes, "size of the seeded ACTIVE fleet")
	flag.Float64Var(&s.HeartbeatRate, "heartbeat-rate", s.HeartbeatRate, "offered heartbeats per second")
	flag.IntVar(&s.HeartbeatSeconds, "heartbeat-seconds", s.HeartbeatSeconds, "measured heartbeat window")
	flag.Float64Var(&s.FixedRate, "fixed-rate", s.FixedRate, "registrations per second of the fixed-load latency run")
	flag.IntVar(&s.FixedSeconds, "fixed-seconds", s.FixedSeconds, "length of the fixed-load latency run")
	curve := flag.String("curve", joinRates(s.CurveRates), "offered loads of the latency curve, comma-separated")
	flag.IntVar(&s.StepSeconds, "step-seconds", s.StepSeconds, "length of each curve step")
	flag.IntVar(&s.SearchSteps, "search-steps", s.SearchSteps, "steps the saturation search may add to the curve")
	flag.IntVar(&s.HalfSeconds, "half-seconds", s.HalfSeconds, "length of the run at half the saturation rate")
	flag.IntVar(&s.Window, "window", s.Window, "registrations in flight in the throughput run")
	flag.IntVar(&s.RegistrationSeconds, "registration-seconds", s.RegistrationSeconds, "measured registration window")
	flag.IntVar(&s.HeldServices, "held", s.HeldServices, "services Consul holds before the registration run and the 10k ceilings")
	flag.IntVar(&s.CeilingSeconds, "ceiling-seconds", s.CeilingSeconds, "length of each raw ceiling")
	flag.IntVar(&s.ProfileSeconds, "profile-seconds", s.ProfileSeconds, "CPU profile length (0: no profiles)")
	flag.BoolVar(&s.Keep, "keep", false, "leave the run's nodes in Kafka, PostgreSQL and Consul")
	flag.BoolVar(&s.Micro, "micro", s.Micro, "run the reducer's Go benchmarks at the end")
	phases := flag.String("phases", "", "run only these phases (comma-separated: ceilings,reducer,heartbeats,latency,registration)")
	flag.Parse()
	var err error
	if s.CurveRates, err = parseRates(*curve); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		return 2
	}
	if *phases != "" {
		s.Phases = map[string]bool{}
		for _, p := range strings.Split(*phases, ",") {
			s.Phases[strings.TrimSpace(p)] = true
		}
	}
	s.Brokers = bus.ParseBrokers(os.Getenv("KAFKA_BOOTSTRAP_SERVERS"))
	s.DBURL = os.Getenv("OMNIBASE_INFRA_DB_URL")
	s.ConsulAddr = os.Getenv("CONSUL_HTTP_ADDR")
	if len(s.Brokers) == 0 || s.DBURL == "" || s.ConsulAddr == "" {
		fmt.Fprintln(os.Stderr, `fleetbench: KAFKA_BOOTSTRAP_SERVERS, OMNIBASE_INFRA_DB_URL and CONSUL_HTTP_ADDR must be set (eval "$(scripts/infra/env.sh)")`)
		return 2
	}
	state := os.Getenv("ONEX_STATE_DIR")
	if state == "" {
		state = os.TempDir()
	}
	s.LogDir = filepath.Join(state, "bench-logs")

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run.Run(ctx, s, log)
	if res != nil {
		fmt.Println()
		res.WriteTable(os.Stdout)
		fmt.Printf("\nresults: %s/results.{json,md}, %s/latency-curve.png\n", s.ResultsDir, s.ResultsDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		return 1
	}
	return 0
}

func joinRates(rs []float64) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strings.Join(out, ",")
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-curve: %q is not a positive rate", f)
		}
		out = append(out, v)
	}
	return out, nil
}
