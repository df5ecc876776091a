package effect

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// What the reducer derives from a node's declaration (contract, intent
// types, protocols, capability tags, event_bus topics) reaches the write
// field by field; an empty contract type or version is NULL; a contract
// type the table would refuse is the intent's fault, named.
func TestDecodeDeclaredFields(t *testing.T) {
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	in := pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Target: "postgres://node_registrations/" + node.String(),
		NodeID: node, Sequence: 1, RegistrationAttemptID: attempt, Priority: 1}
	str := func(s string) *string { return &s }
	full := pipeline.ProjectionData{NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{}`),
		LastAppliedEventID: attempt, RegisteredAt: now, UpdatedAt: now, CorrelationID: corr,
		ContractType: str("effect"), ContractVersion: str("1.4.0"),
		IntentTypes: []string{"postgres.upsert_registration"}, Protocols: []string{"grpc", "http"},
		CapabilityTags:  []string{"mcp-enabled", "mcp-tool:search", "node-type:effect"},
		SubscribeTopics: []string{"onex.cmd.platform.a.v1"}, PublishTopics: []string{"onex.evt.platform.b.v1", "onex.evt.platform.c.v1"}}
	tests := []struct {
		name    string
		mut     func(*pipeline.ProjectionData)
		want    func(*store.Write)
		refused string // the field named by the content error
	}{
		{"every field", nil, func(w *store.Write) {}, ""},
		{"none declared", func(d *pipeline.ProjectionData) {
			d.ContractType, d.ContractVersion, d.IntentTypes, d.Protocols, d.CapabilityTags, d.SubscribeTopics, d.PublishTopics = nil, nil, nil, nil, nil, nil, nil
		}, func(w *store.Write) {
			w.ContractType, w.ContractVersion, w.IntentTypes, w.Protocols, w.CapabilityTags, w.SubscribeTopics, w.PublishTopics = nil, nil, nil, nil, nil, nil, nil
		}, ""},
		{"empty contract", func(d *pipeline.ProjectionData) { d.ContractType, d.ContractVersion = str(""), str("") },
			func(w *store.Write) { w.ContractType, w.ContractVersion = nil, nil }, ""},
		{"unknown contract type", func(d *pipeline.ProjectionData) { d.ContractType = str("runtime_host") }, nil, "payload.record.data.contract_type"},
	}
	for _, tt := range tests {
		d := full
		if tt.mut != nil {
			tt.mut(&d)
		}
		p := pipeline.PostgresUpsertPayload{IntentType: pipeline.PostgresUpsert, CorrelationID: corr,
			Record: pipeline.ProjectionRecord{EntityID: node, CurrentState: "awaiting_ack", Domain: "registration", NodeType: "effect", Data: d}}
		it := Decode(record(t, in, p, corr))
		if tt.refused != "" {
			if it.Err == nil || !infraerr.IsContent(it.Err) || !strings.Contains(it.Err.Error(), tt.refused) {
				t.Errorf("%s: %v, want a content error naming %s", tt.name, it.Err, tt.refused)
			}
			continue
		}
		if it.Err != nil {
			t.Fatalf("%s: %v", tt.name, it.Err)
		}
		want := store.Write{ContractType: full.ContractType, ContractVersion: full.ContractVersion, IntentTypes: full.IntentTypes,
			Protocols: full.Protocols, CapabilityTags: full.CapabilityTags, SubscribeTopics: full.SubscribeTopics, PublishTopics: full.PublishTopics}
		tt.want(&want)
		w := it.Write
		got := store.Write{ContractType: w.ContractType, ContractVersion: w.ContractVersion, IntentTypes: w.IntentTypes,
			Protocols: w.Protocols, CapabilityTags: w.CapabilityTags, SubscribeTopics: w.SubscribeTopics, PublishTopics: w.PublishTopics}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: write\n got  %+v\n want %+v", tt.name, got, want)
		}
	}
}
