package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
)

func TestLoadSettings(t *testing.T) {
	cfg := &config.Config{Environment: "dev", ContractsDir: "/etc/onex/contracts", DrainTimeout: 30 * time.Second}
	cases := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, s Settings)
		err   string
	}{
		{"defaults", nil, func(t *testing.T, s Settings) {
			if s.ContractPath != "/etc/onex/contracts/registration-orchestrator/contract.yaml" || s.TickInterval != time.Second ||
				s.SchedulerID != "runtime-scheduler-default" || s.Limits.MaxBytes != 1<<20 || s.Limits.MaxFutureSkew != 5*time.Minute ||
				s.Limits.MaxAge != 0 || !s.RequestIntrospection || s.CatalogRefresh != 30*time.Second || s.Env != "dev" || s.IngressFromOldest {
				t.Errorf("%+v", s)
			}
		}, ""},
		{"overrides", map[string]string{"ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS": "250", "ONEX_INGRESS_MAX_AGE_SECONDS": "3600",
			"ONEX_REQUEST_INTROSPECTION_ON_START": "false", "ONEX_ORCHESTRATOR_CONTRACT": "/tmp/c.yaml", "ONEX_INGRESS_START": "oldest"}, func(t *testing.T, s Settings) {
			if s.TickInterval != 250*time.Millisecond || s.Limits.MaxAge != time.Hour || s.RequestIntrospection || s.ContractPath != "/tmp/c.yaml" || !s.IngressFromOldest {
				t.Errorf("%+v", s)
			}
		}, ""},
		{"tick interval below the model's range", map[string]string{"ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS": "50"}, nil, "ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS"},
		{"not a number", map[string]string{"ONEX_INGRESS_MAX_MESSAGE_BYTES": "lots"}, nil, "ONEX_INGRESS_MAX_MESSAGE_BYTES"},
		{"bad start", map[string]string{"ONEX_INGRESS_START": "middle"}, nil, "ONEX_INGRESS_START"},
		{"negative skew", map[string]string{"ONEX_INGRESS_MAX_FUTURE_SKEW_SECONDS": "-1"}, nil, "ONEX_INGRESS_MAX_FUTURE_SKEW_SECONDS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := LoadSettings(cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
