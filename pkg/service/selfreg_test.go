package service

import (
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/registration"
)

func TestSelfIdentity(t *testing.T) {
	self := Self{Type: registration.NodeKindOrchestrator, Name: "node_registration_orchestrator",
		Listeners: map[string]Listener{"grpc": {Scheme: "grpc", Addr: "0.0.0.0:8086"}}}
	cases := []struct {
		name     string
		httpAddr string
		env      map[string]string
		wantErr  string
		health   string
		grpc     string
	}{
		{"local default", ":8085", nil, "", "http://127.0.0.1:8085/healthz", "grpc://127.0.0.1:8086"},
		{"pod ip", ":8085", map[string]string{"POD_IP": "10.1.2.3", "POD_NAME": "orch-0"}, "", "http://10.1.2.3:8085/healthz", "grpc://10.1.2.3:8086"},
		{"advertise host wins", "0.0.0.0:9000", map[string]string{"POD_IP": "10.1.2.3", EnvAdvertiseHost: "orch.svc"}, "", "http://orch.svc:9000/healthz", "grpc://orch.svc:8086"},
		{"no port", "localhost", nil, "health address", "", ""},
		{"ephemeral port", "127.0.0.1:0", nil, "no fixed port", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Service{Name: "registration-orchestrator", Config: &config.Config{HTTPAddr: c.httpAddr, Environment: "local"}}
			lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
			id, err := s.SelfIdentity(self, lookup)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Endpoints["health"] != c.health || id.Endpoints["grpc"] != c.grpc || id.Endpoints["api"] == "" {
				t.Errorf("endpoints %v", id.Endpoints)
			}
			if id.Type != registration.NodeKindOrchestrator || id.Name != self.Name {
				t.Errorf("identity %+v", id)
			}
		})
	}

	// The node id is stable for one instance and differs between instances
	// and environments.
	mk := func(env, pod string) string {
		s := &Service{Name: "reducer", Config: &config.Config{HTTPAddr: ":8087", Environment: env}}
		id, err := s.SelfIdentity(Self{Type: registration.NodeKindReducer}, func(k string) (string, bool) {
			if k == "POD_NAME" {
				return pod, true
			}
			return "", false
		})
		if err != nil {
			t.Fatal(err)
		}
		return id.NodeID.String()
	}
	if mk("local", "r-0") != mk("local", "r-0") {
		t.Error("same instance, different node ids")
	}
	if mk("local", "r-0") == mk("local", "r-1") || mk("local", "r-0") == mk("prod", "r-0") {
		t.Error("different instances or environments share a node id")
	}
}
