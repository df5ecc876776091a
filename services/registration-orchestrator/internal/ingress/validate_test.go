package ingress

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
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

// sets are both record sets: the current goldens of the pinned Python
// package and the older fixtures (the compatibility floor).
func sets(t testing.TB) []*fixtures.Set {
	t.Helper()
	old, err := fixtures.LoadSet()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := fixtures.LoadGoldenSet()
	if err != nil {
		t.Fatal(err)
	}
	return []*fixtures.Set{cur, old}
}

// The Python records of both sets are accepted as they are, however old
// their timestamps (they are from March 2026), with nothing unknown.
func TestValidateAcceptsPythonRecords(t *testing.T) {
	for _, s := range sets(t) {
		for _, tc := range []struct {
			topic string
			value []byte
			ids   fixtures.RecordIDs
		}{
			{topics.NodeIntrospection, s.IntrospectionRaw, s.Intro},
			{topics.NodeHeartbeat, s.HeartbeatRaw, s.HB},
			{topics.NodeRegistrationAcked, s.AckRaw, s.AckIDs},
		} {
			t.Run(s.Name+"/"+tc.topic, func(t *testing.T) {
				acc, reason, err := Validate(tc.topic, tc.value, now, DefaultLimits())
				if err != nil {
					t.Fatalf("rejected (%s): %v", reason, err)
				}
				if acc.NodeID.String() != tc.ids.NodeID || acc.CorrelationID.String() != tc.ids.CorrelationID || acc.Unknown != nil {
					t.Errorf("accepted %+v", acc)
				}
			})
		}
	}
	// The older set's ids are the package's constants.
	s := set(t)
	if s.Intro.NodeID != fixtures.NodeID || s.Intro.CorrelationID != fixtures.CorrelationID || s.HB.CorrelationID != fixtures.HeartbeatCorrID ||
		s.Intro.Timestamp != fixtures.IntrospectionTime {
		t.Errorf("older set ids %+v %+v", s.Intro, s.HB)
	}
}

// Every malformed kind, built from either set, is rejected with its reason
// and a failure reason naming the field.
func TestValidateRejectsMalformed(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxBytes = 64 << 10
	kinds := fixtures.MalformedKinds(80 << 10)
	if len(kinds) < 25 {
		t.Fatalf("only %d malformed kinds", len(kinds))
	}
	for _, s := range sets(t) {
		for _, k := range kinds {
			t.Run(s.Name+"/"+k.Kind, func(t *testing.T) {
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
}

// A valid record from a node the registry does not register (runtime_host)
// is not malformed: accepted and forwarded, for the reducer to answer (it
// was dead-lettered as unsupported_node_type before).
func TestValidateAcceptsUnregistrableNodeTypes(t *testing.T) {
	kinds := fixtures.UnregistrableKinds()
	if len(kinds) != 2 {
		t.Fatalf("%d unregistrable kinds, want the introspection and the heartbeat", len(kinds))
	}
	for _, s := range sets(t) {
		for _, k := range kinds {
			t.Run(s.Name+"/"+k.Kind, func(t *testing.T) {
				r := k.Make(s)
				if !bytes.Contains(r.Value, []byte(`"node_type": "runtime_host"`)) {
					t.Fatalf("not a runtime_host record: %.200s", r.Value)
				}
				for _, tolerant := range []bool{true, false} {
					acc, reason, err := validate(r.Topic, r.Value, now, DefaultLimits(), tolerant)
					if err != nil {
						t.Fatalf("rejected (%s): %v", reason, err)
					}
					if acc.NodeID != r.NodeID || acc.NodeType != "runtime_host" || acc.Unknown != nil {
						t.Errorf("accepted %+v", acc)
					}
				}
			})
		}
	}
}

// Records with fields the fleet does not know, at any level, are accepted,
// and each unknown field is reported with its path and its exact value.
func TestValidateAcceptsUnknownFields(t *testing.T) {
	for _, s := range sets(t) {
		for _, k := range fixtures.UnknownFieldKinds() {
			t.Run(s.Name+"/"+k.Kind, func(t *testing.T) {
				r := k.Make(s)
				acc, reason, err := Validate(r.Topic, r.Value, now, DefaultLimits())
				if err != nil {
					t.Fatalf("rejected (%s): %v", reason, err)
				}
				if acc.NodeID != r.NodeID {
					t.Errorf("node %s, want %s", acc.NodeID, r.NodeID)
				}
				var paths []string
				for _, u := range acc.Unknown {
					paths = append(paths, u.Path)
					if !bytes.Contains(r.Value, u.Value) {
						t.Errorf("%s: value %s is not the record's", u.Path, u.Value)
					}
				}
				if !slices.Equal(paths, k.Fields) {
					t.Errorf("unknown %v, want %v", paths, k.Fields)
				}
				// Before, the same record was dead-lettered for its unknown
				// field (or, in the version objects and metadata, silently
				// ignored).
				if _, _, serr := validate(r.Topic, r.Value, now, DefaultLimits(), false); serr == nil &&
					!strings.HasPrefix(k.Fields[0], "metadata.") && !strings.Contains(k.Fields[0], "_version.") &&
					!strings.HasPrefix(k.Fields[0], "sequence") && !strings.HasPrefix(k.Fields[0], "payload.declared_capabilities.") {
					t.Errorf("the strict decode accepted it too")
				}
			})
		}
	}
}

// The table of the tolerant decode: unknown fields never reject a record,
// and every other defect does, naming the field, whether or not unknown
// fields come with it.
func TestValidateTolerance(t *testing.T) {
	s, err := fixtures.LoadGoldenSet()
	if err != nil {
		t.Fatal(err)
	}
	add := func(r fixtures.Record, after, member string) fixtures.Record {
		i := bytes.Index(r.Value, []byte(after))
		if i < 0 {
			t.Fatalf("%q not in the record", after)
		}
		i += len(after)
		r.Value = append(append(append([]byte(nil), r.Value[:i]...), member...), r.Value[i:]...)
		return r
	}
	tests := []struct {
		name    string
		rec     fixtures.Record
		unknown []string
		reason  string // "" accepted
		field   string // in the error
	}{
		{"flow window accepted as a known field", s.Heartbeat(), nil, "", ""},
		{"unknown array of objects", add(s.Heartbeat(), `{"payload": {`, `"windows": [{"a": 1}], `), []string{"payload.windows"}, "", ""},
		{"unknown in a consumer delta", add(s.Heartbeat(), `"consumer_deltas": [{`, `"lag": 1, `),
			[]string{"payload.flow_window.consumer_deltas[0].lag"}, "", ""},
		{"unknown in an event bus topic entry (older set: the golden has none)", add(set(t).Introspection(), `"subscribe_topics": [{`, `"qos": 1, `),
			[]string{"payload.event_bus.subscribe_topics[0].qos"}, "", ""},
		{"unknown in a flag's metadata", replaceIn(t, s.Introspection(), `"resolved_feature_flags": {"flags": {}, "flag_metadata": {}`,
			`"resolved_feature_flags": {"flags": {"f": true}, "flag_metadata": {"f": {"audience": "beta"}}`),
			[]string{"payload.resolved_feature_flags.flag_metadata.f.audience"}, "", ""},
		{"several, in order", add(add(s.Ack(), `{"payload": {`, `"a1": 1, `), `"metadata": {`, `"m1": 2, `),
			[]string{"metadata.m1", "payload.a1"}, "", ""},
		{"new envelope fields are known", replaceIn(t, s.Ack(), `"tenant_id": null, "producer": null`, `"tenant_id": "acme", "producer": "node-a"`), nil, "", ""},
		{"unknown + wrong type of a known field", add(replaceIn(t, s.Heartbeat(), `"active_operations_count": 0`, `"active_operations_count": "0"`),
			`{"payload": {`, `"x": 1, `), nil, ReasonInvalidPayload, "payload.active_operations_count"},
		{"unknown + bad uuid in a flow window", add(replaceIn(t, s.Heartbeat(), `"declares_output": true`,
			`"declares_output": true, "node_id": "nope"`), `{"payload": {`, `"x": 1, `), // the last node_id wins
			nil, ReasonInvalidPayload, "payload.flow_window.consumer_deltas[0].node_id"},
		{"unknown + missing required", add(replaceIn(t, s.Heartbeat(), `"window_sequence": 1, "consumer_deltas"`, `"consumer_deltas"`), `{"payload": {`, `"x": 1, `),
			nil, ReasonInvalidPayload, "payload.flow_window.window_sequence"},
		{"unknown + out of range", add(replaceIn(t, s.Heartbeat(), `"messages_in": 3`, `"messages_in": -3`), `"metadata": {`, `"m": 1, `),
			nil, ReasonInvalidPayload, "payload.flow_window.consumer_deltas[0].messages_in"},
		{"unknown + bad enum", add(replaceIn(t, s.Introspection(), `"node_type": "effect"`, `"node_type": "gateway"`), `{"payload": {`, `"x": 1, `),
			nil, ReasonInvalidPayload, "payload.node_type"},
		{"unknown + window ends before it starts", replaceIn(t, s.Heartbeat(), `"window_end": "2026-03-02T14:06:07.402119Z", "window_sequence": 1, "messages_in"`,
			`"window_end": "2026-03-02T14:00:00Z", "window_sequence": 1, "messages_in"`), nil, ReasonInvalidPayload, "payload.flow_window.consumer_deltas[0].window_end"},
		{"unknown + naive time in a flow window", replaceIn(t, s.Heartbeat(), `"window_start": "2026-03-02T14:05:37.410551Z", "window_end"`,
			`"window_start": "2026-03-02T14:05:37.410551", "window_end"`), nil, ReasonNaiveTimestamp, "payload.flow_window.window_start"},
		{"blank producer", replaceIn(t, s.Ack(), `"producer": null`, `"producer": ""`), nil, ReasonInvalidEnvelope, `"producer"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc, reason, err := Validate(tt.rec.Topic, tt.rec.Value, now, DefaultLimits())
			if reason != tt.reason {
				t.Fatalf("reason %q (%v), want %q", reason, err, tt.reason)
			}
			if tt.reason != "" {
				if !strings.Contains(infraerr.SanitizeError(err), tt.field) {
					t.Fatalf("error %q does not name %s", infraerr.SanitizeError(err), tt.field)
				}
				return
			}
			var paths []string
			for _, u := range acc.Unknown {
				paths = append(paths, u.Path)
			}
			if !slices.Equal(paths, tt.unknown) {
				t.Fatalf("unknown %v, want %v", paths, tt.unknown)
			}
		})
	}
}

func replaceIn(t *testing.T, r fixtures.Record, old, new string) fixtures.Record {
	t.Helper()
	if !bytes.Contains(r.Value, []byte(old)) {
		t.Fatalf("%q not in the record", old)
	}
	r.Value = bytes.Replace(r.Value, []byte(old), []byte(new), 1)
	return r
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

func setB(b *testing.B) *fixtures.Set {
	b.Helper()
	s, err := fixtures.LoadSet()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
