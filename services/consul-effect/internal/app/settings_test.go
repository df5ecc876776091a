package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/consul-effect/expect"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

func loadContract(t *testing.T, dir string) *contract.Contract {
	t.Helper()
	c, err := contract.Load(contract.Path(dir, expect.Service), expect.Contract())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadSettings(t *testing.T) {
	shipped := loadContract(t, testkit.ContractsDir(t))
	base := &config.Config{Environment: "dev", ConsulAddr: "consul:8500", ConsulToken: config.Secret("tok"), DrainTimeout: 30 * time.Second}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, s Settings)
	}{
		{name: "defaults", check: func(t *testing.T, s Settings) {
			if s.IntentsTopic != topics.ConsulIntents || s.ResultsTopic != topics.EffectResults || s.SnapshotsTopic != topics.RegistrationSnapshots {
				t.Errorf("topics: %+v", s)
			}
			if s.ReconcileInterval != 30*time.Second || s.OrphanGrace != 60*time.Second {
				t.Errorf("interval %v grace %v", s.ReconcileInterval, s.OrphanGrace)
			}
			c := s.Consul
			if c.Addr != "consul:8500" || c.Token.Reveal() != "tok" || c.BreakerThreshold != 5 || c.BreakerReset != 60*time.Second ||
				c.Timeout != 5*time.Second || c.SSL || c.InsecureSkipVerify {
				t.Errorf("consul: %+v", c)
			}
			if s.Group != "dev.onex-fleet.consul-effect.consume.1.0.0" || s.Env != "dev" {
				t.Errorf("group %q env %q", s.Group, s.Env)
			}
			if s.Retry != retry.Default() {
				t.Errorf("retry %+v, want the contract's %+v", s.Retry, retry.Default())
			}
			if s.Mode != effect.ModeCatalog {
				t.Errorf("mode %q, want the catalog by default", s.Mode)
			}
		}},
		{name: "agent mode", env: map[string]string{"ONEX_CONSUL_REGISTRATION_MODE": "agent"}, check: func(t *testing.T, s Settings) {
			if s.Mode != effect.ModeAgent {
				t.Errorf("mode %q", s.Mode)
			}
		}},
		{name: "catalog mode, any case", env: map[string]string{"ONEX_CONSUL_REGISTRATION_MODE": " Catalog "}, check: func(t *testing.T, s Settings) {
			if s.Mode != effect.ModeCatalog {
				t.Errorf("mode %q", s.Mode)
			}
		}},
		{name: "unknown mode", env: map[string]string{"ONEX_CONSUL_REGISTRATION_MODE": "esm"}, wantErr: "ONEX_CONSUL_REGISTRATION_MODE"},
		{name: "overrides", env: map[string]string{
			"ONEX_CONSUL_RECONCILE_INTERVAL": "0.5", "ONEX_CONSUL_CB_THRESHOLD": "3", "ONEX_CONSUL_CB_RESET_TIMEOUT": "20",
			"CONSUL_HTTP_SSL": "true", "CONSUL_HTTP_SSL_VERIFY": "false", "CONSUL_CACERT": "/ca.pem",
			"CONSUL_CLIENT_CERT": "/c.pem", "CONSUL_CLIENT_KEY": "/k.pem", "ONEX_CONSUL_EFFECT_GROUP": "g1",
		}, check: func(t *testing.T, s Settings) {
			c := s.Consul
			if s.ReconcileInterval != 500*time.Millisecond || s.OrphanGrace != 30*time.Second || c.BreakerThreshold != 3 ||
				c.BreakerReset != 20*time.Second || !c.SSL || !c.InsecureSkipVerify || c.CACert != "/ca.pem" ||
				c.ClientCert != "/c.pem" || c.ClientKey != "/k.pem" || s.Group != "g1" {
				t.Errorf("settings: %+v", s)
			}
		}},
		{name: "generic breaker overrides apply", env: map[string]string{"ONEX_CB_THRESHOLD": "7", "ONEX_CB_RESET_TIMEOUT": "9"},
			check: func(t *testing.T, s Settings) {
				if s.Consul.BreakerThreshold != 7 || s.Consul.BreakerReset != 9*time.Second {
					t.Errorf("breaker: %+v", s.Consul)
				}
			}},
		{name: "bad interval", env: map[string]string{"ONEX_CONSUL_RECONCILE_INTERVAL": "soon"}, wantErr: "ONEX_CONSUL_RECONCILE_INTERVAL"},
		{name: "zero interval", env: map[string]string{"ONEX_CONSUL_RECONCILE_INTERVAL": "0"}, wantErr: "ONEX_CONSUL_RECONCILE_INTERVAL"},
		{name: "zero threshold", env: map[string]string{"ONEX_CONSUL_CB_THRESHOLD": "0"}, wantErr: "ONEX_CONSUL_CB_THRESHOLD"},
		{name: "cert without key", env: map[string]string{"CONSUL_CLIENT_CERT": "/c.pem"}, wantErr: "CONSUL_CLIENT_KEY"},
		{name: "invalid topic", env: map[string]string{"ONEX_CONSUL_INTENTS_TOPIC": "consul-intents"}, wantErr: "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := LoadSettings(base, shipped)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "tok") {
					t.Fatal("error leaks the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestSettingsFromContract: the breaker and retry numbers are the contract's
// unless the environment says otherwise.
func TestSettingsFromContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "circuit_breaker: {failure_threshold: 5, reset_timeout_seconds: 60}",
		"circuit_breaker: {failure_threshold: 2, reset_timeout_seconds: 10}")
	c := loadContract(t, dir)
	s, err := LoadSettings(&config.Config{Environment: "dev"}, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Consul.BreakerThreshold != 2 || s.Consul.BreakerReset != 10*time.Second {
		t.Errorf("breaker %d/%v, want the contract's 2/10s", s.Consul.BreakerThreshold, s.Consul.BreakerReset)
	}
	t.Setenv("ONEX_CB_RESET_TIMEOUT", "33")
	if s, err = LoadSettings(&config.Config{Environment: "dev"}, c); err != nil || s.Consul.BreakerReset != 33*time.Second {
		t.Errorf("reset %v (%v), want the environment's 33s", s.Consul.BreakerReset, err)
	}
}

// TestRefusesBrokenContract runs the consul effect binary on a contract whose
// breaker threshold is out of range: it must exit 2 before touching any
// server, saying so in one log line.
func TestRefusesBrokenContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "failure_threshold: 5", "failure_threshold: 0")
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/consul-effect/cmd/consul-effect")
	code, out := testkit.RunToExit(t, bin, []string{"ONEX_CONTRACTS_DIR=" + dir, "OMNIBASE_ENV_FILE=/nonexistent",
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "CONSUL_HTTP_ADDR=127.0.0.1:1"}, time.Minute)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
	}
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], contract.Path(dir, expect.Service)) ||
		!strings.Contains(errs[0], "error_handling.circuit_breaker.failure_threshold: 0 is out of range 1..100") {
		t.Fatalf("want one ERROR line naming the file and the bad threshold; output:\n%s", out)
	}
}
