package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// local runs the servers with scripts/infra under a separate state
// directory and ports. ONEX_E2E_REUSE=1 keeps the data of the previous run
// (faster iteration on one test; the default is a clean start).
type local struct {
	root string
	env  []string
}

// Ports and state of the e2e servers: apart from `make run`'s and the other
// test packages' servers (19092, 5436, 18500) so stopping one here touches
// nothing else.
var localEnv = map[string]string{
	"ONEX_STATE_DIR":             "/tmp/onex-e2e",
	"ONEX_KAFKA_PORT":            "29092",
	"ONEX_KAFKA_CONTROLLER_PORT": "29093",
	"ONEX_PG_PORT":               "5446",
	"ONEX_PG_CLUSTER":            "onexe2e",
	"ONEX_CONSUL_PORT":           "28500",
	"ONEX_CONSUL_DNS_PORT":       "28600",
	"ONEX_CONSUL_SERVER_PORT":    "28300",
	"ONEX_CONSUL_SERF_LAN_PORT":  "28301",
	"ONEX_CONSUL_SERF_WAN_PORT":  "28302",
	"ONEX_CONSUL_GRPC_PORT":      "28502",
	"ONEX_LOG_TAG":               "e2e-infra",
}

func newLocal(root string) *local {
	env := os.Environ()
	for k, v := range localEnv {
		if override := os.Getenv("ONEX_E2E_" + strings.TrimPrefix(k, "ONEX_")); override != "" {
			v = override
		}
		env = append(env, k+"="+v)
	}
	return &local{root: root, env: env}
}

func (l *local) Name() string { return "local" }

func (l *local) script(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(l.root, "scripts", "infra", name), args...)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out, 2000))
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (l *local) Start(ctx context.Context) (Servers, error) {
	if os.Getenv("ONEX_E2E_REUSE") != "1" {
		for _, s := range []string{"kafka.sh", "postgres.sh", "consul.sh"} {
			cmd := "reset"
			if s == "consul.sh" {
				cmd = "stop" // a -dev agent keeps its state in memory
			}
			if err := l.script(ctx, s, cmd); err != nil {
				return Servers{}, err
			}
		}
	}
	if err := l.script(ctx, "up.sh"); err != nil {
		return Servers{}, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(l.root, "scripts", "infra", "env.sh"))
	cmd.Env = l.env
	out, err := cmd.Output()
	if err != nil {
		return Servers{}, fmt.Errorf("env.sh: %w", err)
	}
	var s Servers
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `'"`)
		switch k {
		case "KAFKA_BOOTSTRAP_SERVERS":
			s.KafkaBrokers = strings.Split(v, ",")
		case "OMNIBASE_INFRA_DB_URL":
			s.PostgresURL = v
		case "CONSUL_HTTP_ADDR":
			s.ConsulAddr = v
		}
	}
	if len(s.KafkaBrokers) == 0 || s.PostgresURL == "" || s.ConsulAddr == "" {
		return Servers{}, fmt.Errorf("env.sh printed incomplete addresses")
	}
	return s, nil
}

func scriptOf(s Server) string { return string(s) + ".sh" }

func (l *local) Stop(ctx context.Context, s Server) error {
	return l.script(ctx, scriptOf(s), "stop")
}

func (l *local) Resume(ctx context.Context, s Server) error {
	return l.script(ctx, scriptOf(s), "start")
}

func (l *local) Close(ctx context.Context) error {
	if os.Getenv("ONEX_E2E_KEEP") == "1" {
		return nil
	}
	var first error
	for _, s := range []Server{Consul, Postgres, Kafka} {
		if err := l.Stop(ctx, s); err != nil && first == nil {
			first = err
		}
	}
	return first
}
