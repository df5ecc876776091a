package bus

import (
	"strings"
	"testing"
)

func TestGroupID(t *testing.T) {
	tests := []struct {
		env, service, node, purpose, version string
		want                                 string
	}{
		{"local", "omnibase_infra", "node_registration_orchestrator", "consume", "1.1.1",
			"local.omnibase_infra.node_registration_orchestrator.consume.1.1.1"},
		{"Dev", "My Service!", "--node..name--", "consume", "v1", "dev.my_service.node.name.consume.v1"},
		{"local", "a__-b", "n", "replay", "1", "local.a_b.n.replay.1"},
	}
	for _, tt := range tests {
		got, err := GroupID(tt.env, tt.service, tt.node, tt.purpose, tt.version)
		if err != nil || got != tt.want {
			t.Errorf("GroupID(%q,%q,%q) = %q, %v; want %q", tt.env, tt.service, tt.node, got, err, tt.want)
		}
	}
	if _, err := GroupID("local", "!!!", "n", "consume", "1"); err == nil {
		t.Error("a component that normalizes to nothing must be an error")
	}
	long, err := GroupID("local", strings.Repeat("s", 200), strings.Repeat("n", 100), "consume", "1")
	if err != nil || len(long) != 255 || long[246] != '_' {
		t.Errorf("long id = %q (%d), %v; want 246 chars + _ + 8 hex", long, len(long), err)
	}
	again, _ := GroupID("local", strings.Repeat("s", 200), strings.Repeat("n", 100), "consume", "1")
	if again != long {
		t.Error("hash suffix is not stable")
	}
}
