package registration

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// The tolerant decoders of the node-originated models accept unknown keys
// at every level, report them with their paths and values (and an
// introspection keeps them), and reject everything else as the strict
// decoders do.
func TestTolerantDecoders(t *testing.T) {
	intro := goldenPayload(t, "introspection-effect.json")
	hb := goldenPayload(t, "heartbeat-flow-window.json")
	ack := goldenPayload(t, "ack.json")
	ins := func(doc []byte, after, member string) []byte {
		t.Helper()
		i := bytes.Index(doc, []byte(after))
		if i < 0 {
			t.Fatalf("%q not in the document", after)
		}
		i += len(after)
		return append(append(append([]byte(nil), doc[:i]...), member...), doc[i:]...)
	}
	type decoded struct {
		unknown []pyjson.Unknown
		err     error
	}
	decodeIntro := func(b []byte) decoded {
		ev, u, err := DecodeIntrospectionEventTolerant(b)
		if err == nil && !reflect.DeepEqual(ev.Extras, pyjson.UnknownMembers(u)) {
			t.Errorf("Extras %v, unknown %v", ev.Extras, u)
		}
		return decoded{u, err}
	}
	decodeHB := func(b []byte) decoded { _, u, err := DecodeHeartbeatEventTolerant(b); return decoded{u, err} }
	decodeAck := func(b []byte) decoded { _, u, err := DecodeRegistrationAckedTolerant(b); return decoded{u, err} }
	tests := []struct {
		name    string
		decode  func([]byte) decoded
		doc     []byte
		unknown []string // path=value
		field   string   // a FieldError on it
	}{
		{"introspection top level", decodeIntro, ins(intro, `{`, `"zone": "eu", `), []string{`zone="eu"`}, ""},
		{"allow model: kept in its Extra too", decodeIntro, ins(intro, `"declared_capabilities": {`, `"gpu": {"n": 2}, `),
			[]string{`declared_capabilities.gpu={"n": 2}`}, ""},
		{"forbid model, strict rejects", decodeIntro, ins(intro, `"discovered_capabilities": {`, `"hash": 1, `), []string{"discovered_capabilities.hash=1"}, ""},
		{"feature flags (forbid now)", decodeIntro, ins(intro, `"resolved_feature_flags": {`, `"group": null, `), []string{"resolved_feature_flags.group=null"}, ""},
		{"version object (ignore)", decodeIntro, ins(intro, `"node_version": {`, `"label": "x", `), []string{`node_version.label="x"`}, ""},
		{"heartbeat flow window", decodeHB, ins(hb, `"flow_window": {`, `"lag": [1], `), []string{"flow_window.lag=[1]"}, ""},
		{"heartbeat produce delta", decodeHB, ins(hb, `"produce_deltas": [{`, `"bytes": 9, `), []string{"flow_window.produce_deltas[0].bytes=9"}, ""},
		{"ack", decodeAck, ins(ack, `{`, `"latency": 1.5, `), []string{"latency=1.5"}, ""},
		{"unknown does not hide a bad type", decodeHB, ins(bytes.Replace(hb, []byte(`"messages_out": 3`), []byte(`"messages_out": "3"`), 1), `{`, `"x": 1, `),
			nil, "flow_window.consumer_deltas[0].messages_out"},
		{"unknown does not hide a missing field", decodeAck, ins(bytes.Replace(ack, []byte(`"timestamp"`), []byte(`"ts"`), 1), `{`, `"x": 1, `), nil, "timestamp"},
		{"unknown does not hide a range", decodeHB, ins(bytes.Replace(hb, []byte(`"uptime_seconds": 60`), []byte(`"uptime_seconds": -60`), 1), `{`, `"x": 1, `),
			nil, "uptime_seconds"},
		{"unknown does not hide an enum", decodeIntro, ins(bytes.Replace(intro, []byte(`"reason": "startup"`), []byte(`"reason": "boot"`), 1), `{`, `"x": 1, `),
			nil, "reason"},
		{"unknown does not hide a bad uuid", decodeAck, ins(bytes.Replace(ack, []byte(`"command_id": "`), []byte(`"command_id": "x`), 1), `{`, `"x": 1, `),
			nil, "command_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.decode(tt.doc)
			if tt.field != "" {
				var fe *envelope.FieldError
				if !errors.As(d.err, &fe) || fe.Field != tt.field || fe.Model == "" {
					t.Fatalf("err = %v, want a FieldError on %q", d.err, tt.field)
				}
				return
			}
			if d.err != nil {
				t.Fatal(d.err)
			}
			var got []string
			for _, u := range d.unknown {
				got = append(got, u.Path+"="+string(u.Value))
			}
			if !slices.Equal(got, tt.unknown) {
				t.Fatalf("unknown %v, want %v", got, tt.unknown)
			}
		})
	}
	// Unknown keys of forbid models fail the strict decoders, naming them.
	_, err := DecodeIntrospectionEvent(ins(intro, `"resolved_feature_flags": {`, `"group": null, `))
	var fe *envelope.FieldError
	if !errors.As(err, &fe) || fe.Field != "resolved_feature_flags.group" {
		t.Fatalf("strict decode: %v", err)
	}
	_, err = DecodeHeartbeatEvent(ins(hb, `"flow_window": {`, `"lag": [1], `))
	if !errors.As(err, &fe) || fe.Field != "flow_window.lag" {
		t.Fatalf("strict decode: %v", err)
	}
}

// FuzzTolerantIntrospection: whenever the strict decoder accepts an
// introspection, the tolerant one accepts it too, with the same value and
// only the keys of extra="allow" models as unknown; whenever the strict one
// fails for anything but an unknown key, the tolerant one fails the same
// way.
func FuzzTolerantIntrospection(f *testing.F) {
	f.Add(goldenPayload(f, "introspection-effect.json"))
	f.Add(goldenPayload(f, "introspection-request-answer.json"))
	f.Add(fixturePayload(f, "introspection-effect.json"))
	f.Add(bytes.Replace(goldenPayload(f, "introspection-effect.json"), []byte(`"mcp": null}`), []byte(`"mcp": null, "gpu": 1}`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, serr := DecodeIntrospectionEvent(data)
		v, unknown, terr := DecodeIntrospectionEventTolerant(data)
		var fe *envelope.FieldError
		if terr != nil && errors.As(terr, &fe) && fe.Reason == "extra fields not permitted" {
			t.Fatalf("tolerant decode failed on an unknown key: %v", terr)
		}
		switch {
		case serr == nil:
			if terr != nil {
				t.Fatalf("strict ok, tolerant %v", terr)
			}
			for _, u := range unknown {
				if !bytes.HasPrefix([]byte(u.Path), []byte("declared_capabilities.")) && !bytes.HasPrefix([]byte(u.Path), []byte("metadata.")) &&
					!bytes.Contains([]byte(u.Path), []byte("version.")) && !bytes.Contains([]byte(u.Path), []byte(".mcp.")) {
					t.Fatalf("unknown %q where the strict decoder forbids it", u.Path)
				}
			}
			v.Extras = nil
			if s.PerformanceMetrics != nil && v.PerformanceMetrics != nil {
				v.PerformanceMetrics.CapturedAt = s.PerformanceMetrics.CapturedAt
			}
			if !reflect.DeepEqual(s, v) {
				t.Fatalf("values differ:\n%+v\n%+v", s, v)
			}
		case errors.As(serr, &fe) && fe.Reason == "extra fields not permitted":
		default:
			if terr == nil || terr.Error() != serr.Error() {
				t.Fatalf("strict %v, tolerant %v", serr, terr)
			}
		}
	})
}
