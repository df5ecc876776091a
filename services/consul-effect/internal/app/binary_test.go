package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// TestBinary runs the real command: configuration from the environment,
// /readyz turning 200 once topics, snapshots and Consul are checked, /metrics
// with the bus's and the effect's series, the ACL token never in the log, and
// a clean exit on SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	consulAddr := testkit.ConsulAddr(t)
	h := newHarness(t, consulAddr, effect.ModeCatalog)
	bin := filepath.Join(t.TempDir(), "consul-effect")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/omninode/onex-fleet/services/consul-effect/cmd/consul-effect").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	const token = "3f1e-never-log-me-7a2c"
	logPath := filepath.Join(t.TempDir(), "out.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"KAFKA_BOOTSTRAP_SERVERS="+strings.Join(h.brokers, ","), "CONSUL_HTTP_ADDR="+consulAddr, "CONSUL_HTTP_TOKEN="+token,
		"ONEX_ENVIRONMENT="+h.env, "KAFKA_ENVIRONMENT="+h.env, "ONEX_HTTP_PORT="+fmt.Sprint(port), "ONEX_DRAIN_TIMEOUT=5",
		"ONEX_CONSUL_INTENTS_TOPIC="+h.intents, "ONEX_EFFECT_RESULTS_TOPIC="+h.results,
		"ONEX_REGISTRATION_SNAPSHOTS_TOPIC="+h.snapshots, "KAFKA_DEAD_LETTER_TOPIC="+h.dlqTopic,
		"ONEX_CONSUL_RECONCILE_INTERVAL=1", "OMNIBASE_ENV_FILE=/nonexistent", "ONEX_CONTRACTS_DIR="+testkit.ContractsDir(t))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("binary output:\n%s", b)
		}
	})
	get := func(path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	h.eventually(60*time.Second, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == 200 })

	node := uuid.New()
	t.Cleanup(func() { h.deregisterByHand("onex-effect-" + node.String()) })
	s := h.sendIntent(node, 2, 0, pipeline.ConsulRegister, registerPayload(node, 8080, ""), uuid.Nil)
	if r := h.result(s.intentID, 1).res; !r.Success {
		t.Fatalf("result: %+v", r)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`onex_circuit_breaker_state{backend="consul",service="consul-effect"} 0`,
		`onex_consul_intents_total{intent_type="consul.register",outcome="applied",service="consul-effect"} 1`,
		`onex_consul_drift_total{kind="missing",service="consul-effect"}`,
		`onex_ready{service="consul-effect"} 1`,
		`onex_messages_consumed_total{`,
		`onex_consul_snapshot_nodes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	out, _ := os.ReadFile(logPath)
	if strings.Contains(string(out), token) {
		t.Fatal("the ACL token appears in the output")
	}
	if !strings.Contains(string(out), `"consul_token_set":true`) {
		t.Fatal("start-up line does not say a token is set")
	}
}

// TestBinaryKafkaLoginRefused runs the command against the secured broker
// with a wrong SCRAM password: it keeps waiting for Kafka (not ready, no
// crash), and each attempt logs the one line bus.NewClient gives a refused
// login, never the password; SIGTERM ends it cleanly.
func TestBinaryKafkaLoginRefused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	sk := testkit.SecureKafkaBroker(t)
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/consul-effect/cmd/consul-effect")
	const password = "wrong-9d41-never-log-me"
	logPath := filepath.Join(t.TempDir(), "out.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"KAFKA_BOOTSTRAP_SERVERS="+sk.SASLSSL, "KAFKA_SECURITY_PROTOCOL=SASL_SSL", "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME="+sk.Username, "KAFKA_SASL_PASSWORD="+password, "KAFKA_SSL_CA_FILE="+sk.CAFile,
		"CONSUL_HTTP_ADDR=127.0.0.1:1", "ONEX_HTTP_PORT="+fmt.Sprint(freePort(t)), "ONEX_DRAIN_TIMEOUT=5",
		"OMNIBASE_ENV_FILE=/nonexistent", "ONEX_CONTRACTS_DIR="+testkit.ContractsDir(t))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	const line = "Kafka refused the SASL SCRAM-SHA-512 login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
	deadline := time.Now().Add(60 * time.Second)
	for countLines(t, logPath, `"msg":"kafka not reachable yet"`, line) == 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("no line says %q within 60s; output:\n%s", line, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	if b, _ := os.ReadFile(logPath); strings.Contains(string(b), password) {
		t.Fatal("the password is in the output")
	}
}
