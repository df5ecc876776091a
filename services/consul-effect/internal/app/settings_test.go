package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
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
	ca := testca.New(t, "consul test CA")
	cert, key := ca.Issue(t, "client", "localhost")
	_, otherKey := testca.New(t, "another CA").Issue(t, "other", "localhost")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-a-cert.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "secrets", "missing.pem")
	tests := []struct {
		name    string
		env     map[string]string
		cfg     func(*config.Config)
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
			"CONSUL_HTTP_SSL": "true", "CONSUL_HTTP_SSL_VERIFY": "false", "CONSUL_CACERT": ca.CertFile,
			"CONSUL_CLIENT_CERT": cert, "CONSUL_CLIENT_KEY": key, "CONSUL_TLS_SERVER_NAME": "consul.internal", "ONEX_CONSUL_EFFECT_GROUP": "g1",
		}, check: func(t *testing.T, s Settings) {
			c := s.Consul
			if s.ReconcileInterval != 500*time.Millisecond || s.OrphanGrace != 30*time.Second || c.BreakerThreshold != 3 ||
				c.BreakerReset != 20*time.Second || !c.SSL || !c.InsecureSkipVerify || c.CACert != ca.CertFile ||
				c.ClientCert != cert || c.ClientKey != key || c.TLSServerName != "consul.internal" || s.Group != "g1" || c.Scheme() != "https" {
				t.Errorf("settings: %+v", s)
			}
		}},
		{name: "https address", env: map[string]string{"CONSUL_CACERT": ca.CertFile}, cfg: func(c *config.Config) { c.ConsulAddr = "https://consul:8501" },
			check: func(t *testing.T, s Settings) {
				if s.Consul.Scheme() != "https" || len(s.Consul.TLSWarnings()) != 0 {
					t.Errorf("scheme %s, warnings %v", s.Consul.Scheme(), s.Consul.TLSWarnings())
				}
			}},
		// Over http the TLS files are not used: not checked, a warning.
		{name: "tls files over http", env: map[string]string{"CONSUL_CACERT": missing, "CONSUL_TLS_SERVER_NAME": "x"}, check: func(t *testing.T, s Settings) {
			w := s.Consul.TLSWarnings()
			if s.Consul.Scheme() != "http" || len(w) != 2 || !strings.Contains(w[0], "CONSUL_CACERT is ignored") {
				t.Errorf("scheme %s, warnings %v", s.Consul.Scheme(), w)
			}
		}},
		{name: "CA file missing", env: map[string]string{"CONSUL_HTTP_SSL": "true", "CONSUL_CACERT": missing},
			wantErr: "config: CONSUL_CACERT " + missing + " cannot be read (no such file or directory)"},
		{name: "CA file not PEM", env: map[string]string{"CONSUL_HTTP_SSL": "true", "CONSUL_CACERT": notPEM},
			wantErr: "config: CONSUL_CACERT " + notPEM + " holds no PEM certificate"},
		{name: "client key missing", env: map[string]string{"CONSUL_HTTP_SSL": "true", "CONSUL_CLIENT_CERT": cert, "CONSUL_CLIENT_KEY": missing},
			wantErr: "config: CONSUL_CLIENT_KEY " + missing + " cannot be read"},
		{name: "client key of another certificate", env: map[string]string{"CONSUL_HTTP_SSL": "true", "CONSUL_CLIENT_CERT": cert, "CONSUL_CLIENT_KEY": otherKey},
			wantErr: "are no PEM certificate and matching unencrypted key (tls: private key does not match public key)"},
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
			cfg := *base
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s, err := LoadSettings(&cfg, shipped)
			if tt.wantErr != "" {
				// What the service logs before it exits 2.
				if err == nil || !strings.Contains(infraerr.SanitizeError(err), tt.wantErr) {
					t.Fatalf("err = %v (logged %q), want one naming %s", err, infraerr.SanitizeError(err), tt.wantErr)
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

// TestRefusesBadTLSFiles runs the binary with TLS files that cannot be
// used: it must exit 2 before touching any server, with one log line that
// names the variable and the file.
func TestRefusesBadTLSFiles(t *testing.T) {
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/consul-effect/cmd/consul-effect")
	cert, _ := testca.New(t, "consul test CA").Issue(t, "client", "localhost")
	_, otherKey := testca.New(t, "another CA").Issue(t, "other", "localhost")
	missing := filepath.Join(t.TempDir(), "ca.pem")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "CA missing", env: []string{"CONSUL_HTTP_SSL=true", "CONSUL_CACERT=" + missing},
			want: "config: CONSUL_CACERT " + missing + " cannot be read (no such file or directory)"},
		{name: "key of another certificate", env: []string{"CONSUL_HTTP_ADDR=https://127.0.0.1:1", "CONSUL_CLIENT_CERT=" + cert, "CONSUL_CLIENT_KEY=" + otherKey},
			want: "CONSUL_CLIENT_KEY " + otherKey + " are no PEM certificate and matching unencrypted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := testkit.RunToExit(t, bin, append([]string{"ONEX_CONTRACTS_DIR=" + testkit.ContractsDir(t), "OMNIBASE_ENV_FILE=/nonexistent",
				"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "CONSUL_HTTP_ADDR=127.0.0.1:1", "CONSUL_HTTP_TOKEN=never-log-me"}, tt.env...), time.Minute)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
			}
			var errs []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, `"level":"ERROR"`) {
					errs = append(errs, l)
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) || strings.Contains(out, "never-log-me") {
				t.Fatalf("want one ERROR line with %q and no token; output:\n%s", tt.want, out)
			}
		})
	}
}
