package pipeline

import (
	"testing"
)

func TestAggregate(t *testing.T) {
	tests := []struct {
		ok   map[string]bool
		want string
	}{
		{map[string]bool{"consul": true, "postgres": true}, StatusSuccess},
		{map[string]bool{"consul": true, "postgres": false}, StatusPartial},
		{map[string]bool{"consul": false, "postgres": true}, StatusPartial},
		{map[string]bool{"consul": false, "postgres": false}, StatusFailed},
		{map[string]bool{"postgres": true}, StatusSuccess},
		{map[string]bool{}, StatusFailed},
	}
	for _, tt := range tests {
		if got := Aggregate(tt.ok); got != tt.want {
			t.Errorf("Aggregate(%v) = %s, want %s", tt.ok, got, tt.want)
		}
	}
}

func TestBackend(t *testing.T) {
	for in, want := range map[string]string{PostgresUpsert: "postgres", ConsulDeregister: "consul", "x": "x"} {
		if got := Backend(in); got != want {
			t.Errorf("Backend(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeIntent(t *testing.T) {
	good := `{"intent_id":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","intent_type":"consul.register","target":"t","payload":{"a":1},"priority":1,"lease_id":null,"epoch":null,"node_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18","sequence":2,"registration_attempt_id":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","attempt":0}`
	in, err := DecodeIntent([]byte(good))
	if err != nil || in.Sequence != 2 || in.IntentType != ConsulRegister {
		t.Fatalf("good intent: %+v %v", in, err)
	}
	for name, bad := range map[string]string{
		"intent_id": `{"intent_type":"x","node_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18","payload":{}}`,
		"node_id":   `{"intent_id":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","intent_type":"x","payload":{}}`,
		"payload":   `{"intent_id":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","intent_type":"x","node_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"}`,
		"intent":    `not json`,
	} {
		if _, err := DecodeIntent([]byte(bad)); err == nil {
			t.Errorf("intent missing %s accepted", name)
		}
	}
}

func TestDecodeSnapshot(t *testing.T) {
	if s, err := DecodeSnapshot(nil); s != nil || err != nil {
		t.Fatal("a tombstone must decode to nil, nil")
	}
	if _, err := DecodeSnapshot([]byte(`{"current_state":"active"}`)); err == nil {
		t.Fatal("snapshot without entity_id accepted")
	}
	s, err := DecodeSnapshot([]byte(`{"entity_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18","current_state":"active","last_state_change_at":"2026-03-02T14:05:07Z","snapshot_created_at":"2026-03-02T14:05:07Z"}`))
	if err != nil || s.CurrentState != "active" {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestIsRestoreMarker(t *testing.T) {
	for key, want := range map[string]bool{
		"__restore_marker__.0.0":               true,
		"__restore_marker__.":                  true,
		"__restore_marker__":                   false,
		"":                                     false,
		"7f1c2d3e-0000-4000-8000-000000000001": false,
		"x__restore_marker__.1.2":              false,
	} {
		if got := IsRestoreMarker([]byte(key)); got != want {
			t.Errorf("IsRestoreMarker(%q) = %v, want %v", key, got, want)
		}
	}
}
