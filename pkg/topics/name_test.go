package topics

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateGood(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		event   string
		version int
	}{
		{"onex.evt.platform.node-introspection.v1", KindEvent, "platform.node-introspection", 1},
		{"onex.cmd.platform.request-introspection.v1", KindCommand, "platform.request-introspection", 1},
		{"onex.intent.platform.runtime-tick.v1", KindIntent, "platform.runtime-tick", 1},
		{"onex.snapshot.platform.registration-snapshots.v1", KindSnapshot, "platform.registration-snapshots", 1},
		{"onex.dlq.omnibase-infra.events.v1", KindDLQ, "omnibase-infra.events", 1},
		{"onex.evt.omniintelligence.x.v12", KindEvent, "omniintelligence.x", 12},
		{"onex.evt.a.b.v1", KindEvent, "a.b", 1},
		{"onex.evt.a1-b2.c3-d4-e5.v2", KindEvent, "a1-b2.c3-d4-e5", 2},
		{"onex.evt.platform.node-heartbeat.v01", KindEvent, "platform.node-heartbeat", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.name); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			n, err := Parse(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if n.Kind != tt.kind || n.Producer+"."+n.EventName != tt.event || n.Version != tt.version || n.Topic != tt.name {
				t.Errorf("Parse = %+v", n)
			}
			if k, ok := KindOf(tt.name); !ok || k != tt.kind {
				t.Errorf("KindOf = %q, %v", k, ok)
			}
		})
	}
}

func TestValidateBad(t *testing.T) {
	tests := []struct {
		name   string
		reason string
	}{
		{"", "empty topic name"},
		{"x", "expected 5 dot-separated segments (onex.<kind>.<producer>.<event-name>.v<N>), got 1"},
		{"onex.evt.platform", "expected 5 dot-separated segments (onex.<kind>.<producer>.<event-name>.v<N>), got 3"},
		{"onex.evt.platform.node-heartbeat.v1.extra", "got 6"},
		{"dev.onex.evt.platform.node-heartbeat.v1", `starts with environment prefix "dev"`},
		{"local.evt.platform.node-heartbeat.v1", `starts with environment prefix "local"`},
		{"prod.onex.evt.platform.x.v1", `environment prefix "prod"`},
		{"staging.x", `environment prefix "staging"`},
		{"test.onex.evt.a.b.v1", `environment prefix "test"`},
		{"omni.evt.platform.node-heartbeat.v1", `first segment must be "onex", got "omni"`},
		{"onex.event.platform.node-heartbeat.v1", `kind segment "event" is not one of cmd, evt, dlq, intent, snapshot`},
		{"onex.events.platform.node-heartbeat.v1", `kind segment "events"`},
		{"onex..platform.node-heartbeat.v1", `kind segment ""`},
		{"ONEX.evt.platform.node-heartbeat.v1", "must be lowercase"},
		{"onex.evt.Platform.node-heartbeat.v1", "must be lowercase"},
		{"onex.evt.platform.node-heartbeat.V1", "must be lowercase"},
		{"onex.evt.platform.node_heartbeat.v1", `event-name segment "node_heartbeat" contains '_'`},
		{"onex.evt.platform.node--heartbeat.v1", "contains consecutive hyphens"},
		{"onex.evt.platform.node-heartbeat-.v1", "ends with a hyphen"},
		{"onex.evt.platform.-node.v1", "must start with a lowercase letter"},
		{"onex.evt.platform.1node.v1", "must start with a lowercase letter"},
		{"onex.evt..node-heartbeat.v1", `producer segment "" is empty`},
		{"onex.evt.plat form.node.v1", `producer segment "plat form" contains ' '`},
		{"onex.evt.platförm.node.v1", `contains 'ö'`},
		{"onex.evt.platform.node-heartbeat.v0", `version must be at least 1, got "v0"`},
		{"onex.evt.platform.node-heartbeat.v00", "version must be at least 1"},
		{"onex.evt.platform.node-heartbeat.1", `version segment "1" must be v<N>`},
		{"onex.evt.platform.node-heartbeat.v", `version segment "v" must be v<N>`},
		{"onex.evt.platform.node-heartbeat.v1a", "must be v followed by decimal digits"},
		{"onex.evt.platform.node-heartbeat.v-1", "must be v followed by decimal digits"},
		{"onex.evt.platform.node-heartbeat.v99999999999999999999999", "out of range"},
		{"onex.evt.platform.node-heartbeat.v1\n", "contains control character U+000A at byte 35"},
		{"onex.evt.platform.node\x00.v1", "control character U+0000"},
		{"onex.evt.platform.node\u0085x.v1", "control character U+0085"},
		{"onex.evt.platform." + strings.Repeat("a", 240) + ".v1", "Kafka allows at most 249"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.name)
			if err == nil {
				t.Fatal("Validate accepted an invalid name")
			}
			var ne *NameError
			if !errors.As(err, &ne) || ne.Topic != tt.name {
				t.Fatalf("error %T %v is not a *NameError for the name", err, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "topic ") {
				t.Errorf("error %q does not start with the topic", err)
			}
			if _, ok := KindOf(tt.name); ok {
				t.Error("KindOf accepted an invalid name")
			}
		})
	}
}

func TestKinds(t *testing.T) {
	for _, k := range []Kind{KindCommand, KindEvent, KindDLQ, KindIntent, KindSnapshot} {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	if Kind("events").Valid() || Kind("").Valid() {
		t.Error("invalid kind accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"onex.evt.platform.node-heartbeat.v1", "dev.x", "onex.evt.a.b.v0", "onex.evt.a--b.c.v1", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		// Anything accepted must satisfy the core regex and rules.
		if strings.ToLower(s) != s || strings.Count(s, ".") != 4 || !strings.HasPrefix(s, "onex.") || n.Version < 1 || !n.Kind.Valid() {
			t.Fatalf("accepted %q: %+v", s, n)
		}
		if kebabProblem(n.Producer) != "" || kebabProblem(n.EventName) != "" {
			t.Fatalf("accepted non-kebab %q", s)
		}
	})
}
