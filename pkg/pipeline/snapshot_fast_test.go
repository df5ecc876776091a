package pipeline

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/IBM/sarama"
)

// snapshotSample is a record value as the reducer writes it: exactly a
// ModelRegistrationSnapshot.
const snapshotSample = `{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","domain":"registration","current_state":"active",` +
	`"node_type":"effect","node_name":"sim_effect_0","capabilities":{"read":true,"supported_types":["simulated"],"mcp":null},` +
	`"last_state_change_at":"2026-03-02T14:00:01Z","snapshot_version":3,"snapshot_created_at":"2026-03-02T14:00:00.500000Z",` +
	`"schema_version":"1.0.0","source_projection_sequence":3}`

// legacySnapshotSample is a record value as the reducer wrote it before the
// reducer state moved into a header: two keys more.
const legacySnapshotSample = `{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","domain":"registration","current_state":"active",` +
	`"node_type":"effect","node_name":"sim_effect_0","capabilities":{"read":true,"supported_types":["simulated"],"mcp":null},` +
	`"last_state_change_at":"2026-03-02T14:00:01Z","snapshot_version":3,"snapshot_created_at":"2026-03-02T14:00:00.500000Z",` +
	`"schema_version":"1.0.0","source_projection_sequence":3,"consul":{"intent_type":"consul.register",` +
	`"correlation_id":"38183d6b-0027-5f5a-b6e8-ef24dbf81e1b","node_id":"7c795465-f358-51dd-84c7-c32c709a3208",` +
	`"service_id":"onex-effect-7c795465-f358-51dd-84c7-c32c709a3208","service_name":"onex-effect","tags":["onex","node-type:effect"],` +
	`"address":"127.0.0.1","port":9,"health_check":null,"event_bus_config":null},"reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","sequence":3}}`

func TestDecodeSnapshotFastTakesTheReducersRecords(t *testing.T) {
	for name, sample := range map[string]string{"current": snapshotSample, "legacy": legacySnapshotSample} {
		fast, ok := decodeSnapshotFast([]byte(sample))
		if !ok {
			t.Fatalf("%s: the fast decoder refused a record of the reducer's shape", name)
		}
		var ref Snapshot
		if err := json.Unmarshal([]byte(sample), &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, &ref) {
			t.Fatalf("%s: fast %+v\nreference %+v", name, fast, ref)
		}
	}
	// The legacy record's value is the current one plus its two extra keys.
	cur, _ := DecodeSnapshot([]byte(snapshotSample))
	old, _ := DecodeSnapshot([]byte(legacySnapshotSample))
	if !reflect.DeepEqual(cur, old) {
		t.Errorf("legacy record decoded to %+v, want %+v", old, cur)
	}
	// What the fleet writes is what it decodes: the value has the model's
	// fields, in its order, and no other.
	b, err := json.Marshal(cur)
	if err != nil || string(b) != snapshotSample {
		t.Errorf("re-encoded\n%s, want\n%s (%v)", b, snapshotSample, err)
	}
}

func TestSnapshotState(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	for _, tt := range []struct {
		headers []*sarama.RecordHeader
		want    string
	}{
		{nil, ""},
		{[]*sarama.RecordHeader{h("correlation_id", "x")}, ""},
		{[]*sarama.RecordHeader{nil, h("x-onex-reducer-state", `{"a":1}`)}, `{"a":1}`},
		{[]*sarama.RecordHeader{h(HeaderReducerState, `{"a":1}`), h("x", "y"), h(HeaderReducerState, `{"a":2}`)}, `{"a":2}`},
	} {
		if got := SnapshotState(tt.headers); string(got) != tt.want {
			t.Errorf("SnapshotState(%v) = %q, want %q", tt.headers, got, tt.want)
		}
	}
}

// Whatever the fast decoder takes, encoding/json decodes to the same
// snapshot.
func FuzzDecodeSnapshotFastMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte(snapshotSample))
	f.Add([]byte(legacySnapshotSample))
	f.Add([]byte(`{"entity_id":null,"current_state":"x","consul":null,"source_projection_sequence":null,"node_type":null}`))
	f.Add([]byte(`{"Entity_ID":"7c795465-f358-51dd-84c7-c32c709a3208","consul":{"tags":["a"]},"consul":{"port":1}}`))
	f.Add([]byte(`{"consul":{"tags":null,"port":8085,"health_check":{"http":"http://h:1/health","interval":"10s","timeout":"5s","deregister_critical_service_after":"10m"},"event_bus_config":{"a":1},"node_id":null}}`))
	f.Add([]byte(`{"consul":{"tags":["a","b\u00e9"],"port":1e3,"health_check":{"http":"x","http":"y"}}}`))
	f.Add([]byte(`{"snapshot_version":1.5,"last_state_change_at":null,"domain":"a\u00e9"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		fast, ok := decodeSnapshotFast(b)
		if !ok {
			return
		}
		var ref Snapshot
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatalf("fast decoder took %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, &ref) {
			t.Fatalf("%q:\nfast %+v\nreference %+v", b, fast, ref)
		}
	})
}
