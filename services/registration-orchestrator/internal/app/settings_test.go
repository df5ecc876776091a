package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/topics"
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
		{"liveness window without a reducer contract", nil, func(t *testing.T, s Settings) {
			if s.Limits.HeartbeatWindow != DefaultLivenessWindow {
				t.Errorf("heartbeat window %s, want %s", s.Limits.HeartbeatWindow, DefaultLivenessWindow)
			}
		}, ""},
		{"liveness window the reducer's", map[string]string{"ONEX_LIVENESS_WINDOW_SECONDS": "30.5"}, func(t *testing.T, s Settings) {
			if s.Limits.HeartbeatWindow != 30500*time.Millisecond {
				t.Errorf("heartbeat window %s, want 30.5s", s.Limits.HeartbeatWindow)
			}
		}, ""},
		{"liveness window zero", map[string]string{"ONEX_LIVENESS_WINDOW_SECONDS": "0"}, nil, "ONEX_LIVENESS_WINDOW_SECONDS"},
		{"liveness window not a number", map[string]string{"ONEX_LIVENESS_WINDOW_SECONDS": "soon"}, nil, "ONEX_LIVENESS_WINDOW_SECONDS"},
		{"namespace applied to every topic", nil, func(t *testing.T, s Settings) {
			s.Namespace = "bench"
			s.Rename = map[string]string{topics.RegistrationAggregations: "onex.snapshot.run1.registration-aggregations.v1"}
			if got := s.topic(topics.NodeHeartbeat); got != "bench."+topics.NodeHeartbeat {
				t.Errorf("topic = %q", got)
			}
			if got := s.topic(topics.RegistrationAggregations); got != "bench.onex.snapshot.run1.registration-aggregations.v1" {
				t.Errorf("renamed topic = %q", got)
			}
			if got := s.dlqRouter().TopicFor("bench." + topics.NodeHeartbeat); got != "bench."+topics.DLQEvents {
				t.Errorf("dlq topic = %q", got)
			}
		}, ""},
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

// TestLivenessWindowFromReducerContract reads the repository's reducer
// contract: the orchestrator's default is the reducer's.
func TestLivenessWindowFromReducerContract(t *testing.T) {
	w, err := livenessWindow("../../../../contracts")
	if err != nil {
		t.Fatal(err)
	}
	if w != DefaultLivenessWindow {
		t.Errorf("window %s from contracts/reducer, want %s (update DefaultLivenessWindow with the contract)", w, DefaultLivenessWindow)
	}
}
