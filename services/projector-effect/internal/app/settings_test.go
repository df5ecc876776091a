package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
)

func TestLoadSettings(t *testing.T) {
	const dsn = "postgresql://onex:s3cret@db:5432/omnibase_infra"
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
				s.IntentsTopic != "onex.cmd.platform.postgres-intents.v1" || !strings.Contains(s.Group, "projector-effect") {
				t.Errorf("%+v", s)
			}
		}},
		{name: "overrides", dsn: dsn, env: map[string]string{"POSTGRES_POOL_MIN_SIZE": "1", "POSTGRES_POOL_MAX_SIZE": "4",
			"ONEX_CB_THRESHOLD": "3", "ONEX_POSTGRES_CB_RESET_TIMEOUT": "7", "POSTGRES_SSL_MODE": "require", "ONEX_PROJECTOR_MIGRATE": "false"},
			check: func(t *testing.T, s Settings) {
				if s.PoolMin != 1 || s.PoolMax != 4 || s.BreakerThreshold != 3 || s.BreakerReset != 7*time.Second || s.Migrate ||
					!strings.Contains(s.DatabaseURL.Reveal(), "sslmode=require") {
					t.Errorf("%+v", s)
				}
			}},
		{name: "no database", err: "OMNIBASE_INFRA_DB_URL is required"},
		{name: "pool inverted", dsn: dsn, env: map[string]string{"POSTGRES_POOL_MIN_SIZE": "5", "POSTGRES_POOL_MAX_SIZE": "2"}, err: "POOL"},
		{name: "verify-full needs a CA", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-full"}, err: "POSTGRES_SSL_CA_FILE"},
		{name: "bad topic", dsn: dsn, env: map[string]string{"ONEX_POSTGRES_INTENTS_TOPIC": "nope"}, err: "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := LoadSettings(&config.Config{Environment: "dev", DatabaseURL: config.Secret(tt.dsn)})
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
