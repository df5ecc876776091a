package ingress

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func set(t *testing.T) *fixtures.Set {
	t.Helper()
	s, err := fixtures.LoadSet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The golden Python records are accepted as they are, however old their
// timestamps (the fixtures are from March 2026).
func TestValidateAcceptsPythonRecords(t *testing.T) {
	s := set(t)
	for _, tc := range []struct {
		topic string
		value []byte
		node  string
		corr  string
	}{
		{topics.NodeIntrospection, s.IntrospectionRaw, fixtures.NodeID, fixtures.CorrelationID},
		{topics.NodeHeartbeat, s.HeartbeatRaw, fixtures.NodeID, fixtures.HeartbeatCorrID},
		{topics.NodeRegistrationAcked, s.AckRaw, fixtures.NodeID, fixtures.CorrelationID},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			acc, reason, err := Validate(tc.topic, tc.value, now, DefaultLimits())
			if err != nil {
				t.Fatalf("rejected (%s): %v", reason, err)
			}
			if acc.NodeID.String() != tc.node || acc.CorrelationID.String() != tc.corr {
				t.Errorf("accepted %+v", acc)
			}
		})
	}
}

func TestValidateRejectsMalformed(t *testing.T) {
	s := set(t)
	lim := DefaultLimits()
	lim.MaxBytes = 64 << 10
	kinds := fixtures.MalformedKinds(80 << 10)
	if len(kinds) < 20 {
		t.Fatalf("only %d malformed kinds", len(kinds))
	}
	for _, k := range kinds {
		t.Run(k.Kind, func(t *testing.T) {
			r := k.Make(s)
			_, reason, err := Validate(r.Topic, r.Value, now, lim)
			if err == nil {
				t.Fatalf("accepted: %.300s", r.Value)
			}
			if !infraerr.IsContent(err) {
				t.Errorf("not a content error: %v", err)
			}
			if reason != k.Reason || !slices.Contains(Reasons, reason) {
				t.Errorf("reason %q, want %q", reason, k.Reason)
			}
			text := infraerr.SanitizeError(err)
			for _, w := range k.Want {
				if !strings.Contains(text, w) {
					t.Errorf("failure reason %q does not contain %q", text, w)
				}
			}
		})
	}
}

func TestValidateTimestampBounds(t *testing.T) {
	s := set(t)
	ts, _ := envelope.ParseTime(fixtures.IntrospectionTime)
	cases := []struct {
		name   string
		now    time.Time
		lim    Limits
		reason string
	}{
		{"clock 4 minutes behind the node", ts.Add(-4 * time.Minute), DefaultLimits(), ""},
		{"clock 6 minutes behind the node", ts.Add(-6 * time.Minute), DefaultLimits(), ReasonFutureTimestamp},
		{"no age bound by default", ts.Add(365 * 24 * time.Hour), DefaultLimits(), ""},
		{"age bound set and exceeded", ts.Add(2 * time.Hour), Limits{MaxBytes: 1 << 20, MaxFutureSkew: time.Minute, MaxAge: time.Hour}, ReasonStaleTimestamp},
		{"cached introspection within the age bound", ts.Add(5 * time.Minute), Limits{MaxBytes: 1 << 20, MaxFutureSkew: time.Minute, MaxAge: time.Hour}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, reason, err := Validate(topics.NodeIntrospection, s.IntrospectionRaw, tc.now, tc.lim)
			if reason != tc.reason {
				t.Fatalf("reason %q (%v), want %q", reason, err, tc.reason)
			}
		})
	}
}

// The reducer input line carries the original value byte for byte and
// decodes as a pipeline.ReducerInput.
func TestReducerInputKeepsValueBytes(t *testing.T) {
	s := set(t)
	at := time.Date(2026, 3, 2, 14, 5, 7, 500000000, time.UTC)
	line := wire.ReducerInput(topics.NodeIntrospection, at, s.IntrospectionRaw)
	var ri pipeline.ReducerInput
	if err := json.Unmarshal(line, &ri); err != nil {
		t.Fatal(err)
	}
	if ri.Topic != topics.NodeIntrospection || !ri.ReceivedAt.Equal(at) {
		t.Errorf("decoded %s %s", ri.Topic, ri.ReceivedAt)
	}
	if string(ri.Value) != string(s.IntrospectionRaw) {
		t.Error("value changed")
	}
	if !strings.Contains(string(line), `"received_at":"2026-03-02T14:05:07.500000Z"`) {
		t.Errorf("received_at not in pydantic form: %.120s", line)
	}
}
