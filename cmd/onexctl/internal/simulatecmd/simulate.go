// Package simulatecmd implements `onexctl simulate`: a fleet of simulated
// ONEX nodes in one process (pkg/node/sim), with faults on demand.
package simulatecmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Command builds `onexctl simulate`.
func Command() *cobra.Command {
	var (
		o        sim.Options
		duration time.Duration
		every    time.Duration
		output   string
		env      string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run a fleet of simulated ONEX nodes against the registry",
		Long: `Runs --nodes simulated nodes in this process. Each publishes its startup
introspection (at --rate per second), acks its accepted event, heartbeats
every --heartbeat-interval and answers re-introspection requests, exactly as
a Python node would on the wire. Faults: --fail-ack P makes that fraction of
nodes never ack; --die P makes that fraction fall silent between one and
three heartbeat intervals after start. Node ids are derived from --seed, so
the same seed names the same nodes. Progress is printed every --report
(JSON lines with -o json) until Ctrl-C or --duration.

Needs KAFKA_BOOTSTRAP_SERVERS (eval "$(scripts/infra/env.sh)").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			brokers := bus.ParseBrokers(os.Getenv("KAFKA_BOOTSTRAP_SERVERS"))
			if len(brokers) == 0 {
				return fmt.Errorf("KAFKA_BOOTSTRAP_SERVERS is not set (eval \"$(scripts/infra/env.sh)\")")
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o must be text or json, got %q", output)
			}
			if err := o.Validate(); err != nil {
				return err
			}
			ns, err := topicns.FromEnv()
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			if env == "" {
				env = strings.TrimSpace(os.Getenv("ONEX_ENVIRONMENT"))
			}
			r := &sim.Runner{
				Fleet:       node.Config{Brokers: brokers, Environment: env, ClientID: "onexctl-simulate", Namespace: ns},
				Options:     o,
				Out:         cmd.OutOrStdout(),
				ReportEvery: every,
				JSON:        output == "json",
				Log:         slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
			}
			return r.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", 50, "number of simulated nodes")
	f.Float64Var(&o.Rate, "rate", 100, "startup introspections per second (0: all at once)")
	f.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", node.DefaultHeartbeatInterval, "heartbeat interval of every node")
	f.Float64Var(&o.FailAck, "fail-ack", 0, "fraction of nodes that never ack their accepted event (0..1)")
	f.Float64Var(&o.Die, "die", 0, "fraction of nodes that stop heartbeating after 1-3 intervals (0..1)")
	f.StringVar(&o.Seed, "seed", "sim", "seed of node ids and faults (same seed, same nodes)")
	f.BoolVar(&o.HealthEndpoints, "health-endpoints", true, "serve a health URL per node for Consul's checks (200 alive, 503 dead)")
	f.StringVar(&o.HealthAddr, "health-addr", "127.0.0.1:0", "listen address of the nodes' health server")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	f.DurationVar(&every, "report", 2*time.Second, "progress report interval")
	f.StringVarP(&output, "output", "o", "text", "progress format: text or json")
	f.StringVar(&env, "environment", "", "bus environment for the source header (default $ONEX_ENVIRONMENT, else local)")
	f.StringVar(&logLevel, "log-level", "warn", "log level on stderr")
	return cmd
}
