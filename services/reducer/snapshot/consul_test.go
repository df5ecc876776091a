package snapshot

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// consulOfDecode is the reference for ConsulOf: the reducer's restore of
// the record, then its derivation of the restored state; nil for a
// tombstone and a record without a reducer state.
func consulOfDecode(value, state []byte) (*pipeline.ConsulRegisterPayload, error) {
	st, err := Decode(value, state)
	if errors.Is(err, errNoState) || err == nil && st == nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := ConsulPayload(st.ConsulRegistration(), st.NodeID, st.CorrelationID)
	return &c, nil
}

// ConsulOf reads the records with consulservice.FromSnapshot, which the
// consul effect shares, not with Decode: on every record the reducer writes,
// in both layouts, it derives what Decode's state derives.
func TestConsulOfMatchesDecode(t *testing.T) {
	recorded, err := os.ReadFile("testdata/record-state-in-value.json")
	if err != nil {
		t.Fatal(err)
	}
	type record struct{ value, state []byte }
	records := map[string]record{
		"recorded, state in the value": {value: bytes.TrimSpace(recorded)},
		"legacy, MCP tool in the tags": {value: []byte(legacy)},
	}
	for name, st := range encodeStates(t) {
		rec, err := Encode(st, at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		records[name] = record{value: rec.Value, state: rec.State}
		records[name+", state in the value"] = record{value: legacyLayout(rec)}
		records[name+", without a reducer state"] = record{value: rec.Value}
	}
	records["tombstone"] = record{}
	for name, r := range records {
		t.Run(name, func(t *testing.T) {
			want, err := consulOfDecode(r.value, r.state)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ConsulOf(r.value, r.state)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ConsulOf\n%+v, want\n%+v", got, want)
			}
		})
	}
}

// Whatever the reducer restores a state from derives the same service
// through ConsulOf. (ConsulOf reads only what the derivation needs, so it
// may take a record whose other fields the restore refuses.)
func FuzzConsulOfMatchesDecode(f *testing.F) {
	for _, st := range encodeStates(f) {
		rec, err := Encode(st, time.Now())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Value, rec.State)
		f.Add(legacyLayout(rec), []byte{})
	}
	f.Add([]byte(legacy), []byte{})
	f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x","reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","endpoints":{"health":"http://a:1/h","health":"http://b:2/h"}}}`), []byte{})
	f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x","consul":{"tags":["mcp-enabled","mcp-tool:t"]}}`),
		[]byte(`{"Node_ID":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","node_type":"orchestrator"}`))
	f.Fuzz(func(t *testing.T, value, state []byte) {
		want, err := consulOfDecode(value, state)
		if err != nil {
			return
		}
		got, err := ConsulOf(value, state)
		if err != nil {
			t.Fatalf("ConsulOf refused what the reducer restores (%v): %s %s", err, value, state)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ConsulOf and Decode disagree on %s %s:\n%+v\n%+v", value, state, got, want)
		}
	})
}
