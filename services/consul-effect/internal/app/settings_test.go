package app

import (
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func TestLoadSettings(t *testing.T) {
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
		}},
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
			s, err := LoadSettings(base)
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
