package store_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

func TestFilterValidate(t *testing.T) {
	many := make([]string, store.MaxFilterValues+1)
	for i := range many {
		many[i] = "t"
	}
	long := strings.Repeat("é", store.MaxFilterValueLen+1)
	tests := []struct {
		name string
		f    store.Filter
		want string // "" = valid; else a substring of the error
	}{
		{"empty", store.Filter{}, ""},
		{"everything", store.Filter{State: "active", NodeType: "effect", Capability: "postgres", CapabilityTags: []string{"mcp-enabled"},
			Protocols: []string{"grpc"}, IntentTypes: []string{"a.b"}, ContractType: "unknown"}, ""},
		{"at the bounds", store.Filter{CapabilityTags: many[:store.MaxFilterValues], Protocols: []string{long[:len(long)-2]}}, ""},
		{"unknown state", store.Filter{State: "sleeping"}, `state: "sleeping"`},
		{"unknown contract type", store.Filter{ContractType: "runtime_host"}, `contract_type: "runtime_host" is not one of effect, compute`},
		{"too many tags", store.Filter{CapabilityTags: many}, "capability_tags: at most 32 values, got 33"},
		{"empty tag", store.Filter{CapabilityTags: []string{"a", ""}}, "capability_tags[1]: empty value"},
		{"blank protocol", store.Filter{Protocols: []string{"  "}}, "protocols[0]: empty value"},
		{"long intent type", store.Filter{IntentTypes: []string{long}}, "intent_types[0]: longer than 256 characters"},
		{"long capability", store.Filter{Capability: long}, "capability: longer than 256"},
		{"long node type", store.Filter{NodeType: long}, "node_type: longer than 256"},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestFilterNormalized(t *testing.T) {
	f := store.Filter{State: "active", CapabilityTags: []string{"b", "a", "b"}, Protocols: []string{}, IntentTypes: []string{"x"}}
	got := f.Normalized()
	want := store.Filter{State: "active", CapabilityTags: []string{"a", "b"}, IntentTypes: []string{"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%+v, want %+v", got, want)
	}
	if f.CapabilityTags[0] != "b" {
		t.Error("Normalized changed its receiver's list")
	}
}
