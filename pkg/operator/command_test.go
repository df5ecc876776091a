package operator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

func valid() Command {
	id := uuid.MustParse("6a0d3e1c-0000-4000-8000-000000000001")
	return Command{CommandID: uuid.MustParse("6a0d3e1c-0000-4000-8000-0000000000c1"), Command: Deregister, NodeID: &id,
		Reason: "decommissioned", RequestedBy: "ops@host", RequestedAt: envelope.Time{Time: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)}}
}

func evict(state string, age int64) Command {
	c := valid()
	c.Command, c.NodeID, c.State, c.OlderThanSeconds = Evict, nil, &state, &age
	return c
}

func TestValidate(t *testing.T) {
	neg := int64(-1)
	tests := []struct {
		name  string
		c     func() Command
		field string // "" = valid
	}{
		{"deregister", valid, ""},
		{"evict", func() Command { return evict("awaiting_ack", 600) }, ""},
		{"evict age 0", func() Command { return evict("active", 0) }, ""},
		{"no command id", func() Command { c := valid(); c.CommandID = uuid.Nil; return c }, "command_id"},
		{"unknown command", func() Command { c := valid(); c.Command = "purge"; return c }, "command"},
		{"deregister without node", func() Command { c := valid(); c.NodeID = nil; return c }, "node_id"},
		{"deregister nil node", func() Command { c := valid(); c.NodeID = &uuid.Nil; return c }, "node_id"},
		{"deregister with state", func() Command { c := valid(); s := "active"; c.State = &s; return c }, "state"},
		{"evict with node", func() Command { c := evict("active", 1); c.NodeID = valid().NodeID; return c }, "node_id"},
		{"evict terminal state", func() Command { return evict("liveness_expired", 1) }, "state"},
		{"evict unknown state", func() Command { return evict("zombie", 1) }, "state"},
		{"evict without age", func() Command { c := evict("active", 1); c.OlderThanSeconds = nil; return c }, "older_than_seconds"},
		{"evict negative age", func() Command { c := evict("active", 1); c.OlderThanSeconds = &neg; return c }, "older_than_seconds"},
		{"long reason", func() Command { c := valid(); c.Reason = strings.Repeat("é", MaxReason+1); return c }, "reason"},
		{"reason at the limit", func() Command { c := valid(); c.Reason = strings.Repeat("é", MaxReason); return c }, ""},
		{"no requester", func() Command { c := valid(); c.RequestedBy = ""; return c }, "requested_by"},
		{"invalid UTF-8 requester", func() Command { c := valid(); c.RequestedBy = "\xff"; return c }, "requested_by"},
		{"no time", func() Command { c := valid(); c.RequestedAt = envelope.Time{}; return c }, "requested_at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c()
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid command refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `"`+tc.field+`"`) {
				t.Fatalf("error %v, want one naming %q", err, tc.field)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	corr := uuid.MustParse("6a0d3e1c-0000-4000-8000-0000000000cc")
	for _, c := range []Command{valid(), evict("active", 3600)} {
		b, err := Encode(&c, corr)
		if err != nil {
			t.Fatal(err)
		}
		env, got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode of an encoded command: %v\n%s", err, b)
		}
		if env.EnvelopeID != c.CommandID || env.CorrelationID == nil || *env.CorrelationID != corr {
			t.Errorf("envelope ids %v %v", env.EnvelopeID, env.CorrelationID)
		}
		if got.Command != c.Command || got.Key() != c.Key() || got.OlderThan() != c.OlderThan() || got.RequestedBy != c.RequestedBy ||
			!got.RequestedAt.Equal(c.RequestedAt.Time) {
			t.Errorf("round trip %+v, want %+v", got, c)
		}
	}
	bad := valid()
	bad.RequestedBy = ""
	if _, err := Encode(&bad, corr); err == nil {
		t.Fatal("Encode accepted an invalid command")
	}
}

func TestDecodePayloadStrict(t *testing.T) {
	c := valid()
	b, err := Encode(&c, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, payload, want string }{
		{"unknown field", strings.Replace(string(env.Payload), `"reason"`, `"extra": 1, "reason"`, 1), "unknown field"},
		{"trailing data", string(env.Payload) + ` {}`, "trailing"},
		{"not an object", `[]`, "operator command"},
		{"wrong type", strings.Replace(string(env.Payload), `"reason": "decommissioned"`, `"reason": 5`, 1), "operator command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodePayload([]byte(tc.payload)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q (payload %s)", err, tc.want, tc.payload)
			}
		})
	}
}

// FuzzDecode: a record on the command topic is outside input; the decoder
// never panics, and what it accepts is valid and encodes again.
func FuzzDecode(f *testing.F) {
	c := valid()
	b, _ := Encode(&c, uuid.Nil)
	f.Add(b)
	e := evict("active", 10)
	b, _ = Encode(&e, uuid.Nil)
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, got, err := Decode(data)
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid command: %v", err)
		}
		if _, err := Encode(got, uuid.Nil); err != nil {
			t.Fatalf("an accepted command does not encode: %v", err)
		}
	})
}
