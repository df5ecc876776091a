package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
	"github.com/omninode/onex-fleet/services/projector-effect/expect"
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
	const dsn = "postgresql://onex:s3cret@db:5432/omnibase_infra"
	ca := testca.New(t, "projector settings CA")
	cert, key := ca.Issue(t, "projector", "localhost")
	for _, k := range []string{grpcsec.EnvTLSCertFile, grpcsec.EnvTLSKeyFile, grpcsec.EnvClientCAFile, grpcsec.EnvAdminToken, grpcsec.EnvAdminSubjects} {
		t.Setenv(k, "")
	}
	tests := []struct {
		name  string
		env   map[string]string
		dsn   string
		check func(t *testing.T, s Settings)
		err   string
	}{
		{name: "defaults", dsn: dsn, check: func(t *testing.T, s Settings) {
			if s.PoolMin != 2 || s.PoolMax != 10 || s.BreakerThreshold != 5 || s.BreakerReset != 60*time.Second ||
				s.GRPCAddr != ":8086" || !s.Migrate || s.MaxBatch != 500 || s.QueryTimeout != 30*time.Second ||
				s.IntentsTopic != "onex.cmd.platform.postgres-intents.v1" || s.AdminTopic != "onex.cmd.platform.registration-admin.v1" ||
				!strings.Contains(s.Group, "projector-effect") || s.GRPC.String() != "plaintext, admin disabled" {
				t.Errorf("%+v", s)
			}
			want := retry.Policy{MaxAttempts: 10, Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
			if s.Retry != want {
				t.Errorf("retry %+v, want %+v", s.Retry, want)
			}
		}},
		{name: "overrides", dsn: dsn, env: map[string]string{"POSTGRES_POOL_MIN_SIZE": "1", "POSTGRES_POOL_MAX_SIZE": "4",
			"ONEX_CB_THRESHOLD": "3", "ONEX_POSTGRES_CB_RESET_TIMEOUT": "7", "ONEX_POSTGRES_RETRY_MAX_DELAY": "2", "POSTGRES_SSL_MODE": "require", "ONEX_PROJECTOR_MIGRATE": "false"},
			check: func(t *testing.T, s Settings) {
				if s.PoolMin != 1 || s.PoolMax != 4 || s.BreakerThreshold != 3 || s.BreakerReset != 7*time.Second || s.Migrate || s.Retry.Max != 2*time.Second ||
					!strings.Contains(s.DatabaseURL.Reveal(), "sslmode=require") {
					t.Errorf("%+v", s)
				}
			}},
		{name: "no database", err: "OMNIBASE_INFRA_DB_URL is required"},
		{name: "pool inverted", dsn: dsn, env: map[string]string{"POSTGRES_POOL_MIN_SIZE": "5", "POSTGRES_POOL_MAX_SIZE": "2"}, err: "POOL"},
		{name: "verify-full needs a CA", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-full"}, err: "POSTGRES_SSL_CA_FILE"},
		{name: "bad topic", dsn: dsn, env: map[string]string{"ONEX_POSTGRES_INTENTS_TOPIC": "nope"}, err: "topic"},
		{name: "admin topic", dsn: dsn, env: map[string]string{"ONEX_REGISTRATION_ADMIN_TOPIC": "onex.cmd.staging.registration-admin.v1"},
			check: func(t *testing.T, s Settings) {
				if s.AdminTopic != "onex.cmd.staging.registration-admin.v1" {
					t.Errorf("admin topic %q", s.AdminTopic)
				}
			}},
		{name: "bad admin topic", dsn: dsn, env: map[string]string{"ONEX_REGISTRATION_ADMIN_TOPIC": "admin"}, err: `topic "admin"`},
		{name: "grpc mtls with admin subjects", dsn: dsn, env: map[string]string{grpcsec.EnvTLSCertFile: cert, grpcsec.EnvTLSKeyFile: key,
			grpcsec.EnvClientCAFile: ca.CertFile, grpcsec.EnvAdminSubjects: "onexctl-admin"},
			check: func(t *testing.T, s Settings) {
				if s.GRPC.String() != "mTLS, admin by 1 subjects" || s.GRPC.CertFile != cert || len(s.GRPC.Warnings()) != 0 {
					t.Errorf("grpc settings %v, warnings %q", s.GRPC, s.GRPC.Warnings())
				}
			}},
		{name: "grpc client CA without TLS", dsn: dsn, env: map[string]string{grpcsec.EnvClientCAFile: ca.CertFile},
			err: "ONEX_GRPC_CLIENT_CA_FILE needs TLS"},
		{name: "grpc key without certificate", dsn: dsn, env: map[string]string{grpcsec.EnvTLSKeyFile: key},
			err: "ONEX_GRPC_TLS_CERT_FILE and ONEX_GRPC_TLS_KEY_FILE go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := LoadSettings(&config.Config{Environment: "dev", DatabaseURL: config.Secret(tt.dsn)}, shipped)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the password: %v", err)
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
		"circuit_breaker: {failure_threshold: 9, reset_timeout_seconds: 15}")
	c := loadContract(t, dir)
	cfg := &config.Config{Environment: "dev", DatabaseURL: config.Secret("postgresql://onex:x@db:5432/omnibase_infra")}
	s, err := LoadSettings(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.BreakerThreshold != 9 || s.BreakerReset != 15*time.Second {
		t.Errorf("breaker %d/%v, want the contract's 9/15s", s.BreakerThreshold, s.BreakerReset)
	}
	t.Setenv("ONEX_POSTGRES_CB_THRESHOLD", "4")
	if s, err = LoadSettings(cfg, c); err != nil || s.BreakerThreshold != 4 {
		t.Errorf("threshold %d (%v), want the environment's 4", s.BreakerThreshold, err)
	}
}

// TestRefusesBrokenContract runs the projector binary on a contract with a
// misspelt key: it must exit 2 before touching any server, saying so in one
// log line.
func TestRefusesBrokenContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "circuit_breaker:", "circuit_braker:")
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/projector-effect/cmd/projector-effect")
	code, out := testkit.RunToExit(t, bin, []string{"ONEX_CONTRACTS_DIR=" + dir, "OMNIBASE_ENV_FILE=/nonexistent",
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "OMNIBASE_INFRA_DB_URL=postgresql://onex:x@127.0.0.1:1/omnibase_infra"}, time.Minute)
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
		!strings.Contains(errs[0], "error_handling.circuit_braker: unknown key") {
		t.Fatalf("want one ERROR line naming the file and the unknown key; output:\n%s", out)
	}
}

// TestRefusesBadGRPCSecurity runs the projector binary with a client CA but
// no server certificate, and with an admin token: it must exit 2 before
// touching any server, in one ERROR line that names the variables and never
// the token.
func TestRefusesBadGRPCSecurity(t *testing.T) {
	ca := testca.New(t, "projector exit CA")
	const token = "tok-Qe71-never-print-abcdefgh"
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/projector-effect/cmd/projector-effect")
	code, out := testkit.RunToExit(t, bin, []string{"ONEX_CONTRACTS_DIR=" + testkit.ContractsDir(t), "OMNIBASE_ENV_FILE=/nonexistent",
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "OMNIBASE_INFRA_DB_URL=postgresql://onex:x@127.0.0.1:1/omnibase_infra",
		grpcsec.EnvClientCAFile + "=" + ca.CertFile, grpcsec.EnvAdminToken + "=" + token}, time.Minute)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
	}
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "ONEX_GRPC_CLIENT_CA_FILE needs TLS: set ONEX_GRPC_TLS_CERT_FILE and ONEX_GRPC_TLS_KEY_FILE too") {
		t.Fatalf("want one ERROR line naming the variables; output:\n%s", out)
	}
	if strings.Contains(out, token) {
		t.Fatalf("the output shows the token:\n%s", out)
	}
}
