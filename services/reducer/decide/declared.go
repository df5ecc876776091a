package decide

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// Declared is what a node declares beyond its identity and endpoints: its
// contract (the introspection's contract_capabilities) and the topics of its
// event_bus. It fills the projection's capability and topic columns and the
// topic catalog's view of the node (NodeTopicsOf). Nodes of one kind and
// release declare the same, so the reducer shares one Declared between them
// (the wire decoder interns it); like every value a state points to, it is
// never modified once built.
type Declared struct {
	ContractType    *string  `json:"contract_type,omitempty"`
	ContractVersion *string  `json:"contract_version,omitempty"` // "1.2.0"
	IntentTypes     []string `json:"intent_types,omitempty"`
	Protocols       []string `json:"protocols,omitempty"`
	// CapabilityTags are the contract's tags, sorted and unique (the
	// model's order); the projection adds the derived ones (CapabilityTags).
	CapabilityTags  []string `json:"capability_tags,omitempty"`
	SubscribeTopics []string `json:"subscribe_topics,omitempty"`
	PublishTopics   []string `json:"publish_topics,omitempty"`

	raw []byte // the JSON above, once built by NewDeclared
}

// DeclaredInput is the raw declaration of an introspection.
type DeclaredInput struct {
	HasContract     bool
	ContractType    string
	ContractVersion string
	IntentTypes     []string
	Protocols       []string
	CapabilityTags  []string
	SubscribeTopics []string
	PublishTopics   []string
}

// NewDeclared normalises a declaration: lists without empty or repeated
// values (topics and types in the node's order, tags sorted). It returns nil
// when the node declares nothing, so a state without a declaration costs
// nothing.
func NewDeclared(in DeclaredInput) *Declared {
	d := &Declared{
		IntentTypes: uniq(in.IntentTypes), Protocols: uniq(in.Protocols), CapabilityTags: uniq(in.CapabilityTags),
		SubscribeTopics: uniq(in.SubscribeTopics), PublishTopics: uniq(in.PublishTopics),
	}
	sort.Strings(d.CapabilityTags)
	if in.HasContract {
		if in.ContractType != "" {
			d.ContractType = ptr(ContractType(in.ContractType))
		}
		if in.ContractVersion != "" {
			d.ContractVersion = ptr(in.ContractVersion)
		}
	}
	if d.empty() {
		return nil
	}
	d.raw, _ = json.Marshal(d) // strings and lists of strings always marshal
	return d
}

// ContractTypes are the contract types the projection holds (its
// valid_contract_type check, spec 5.2).
var ContractTypes = []string{"effect", "compute", "reducer", "orchestrator", "unknown"}

// ContractType is the projection's contract_type of a declared one: the
// declared value in lower case when the projection holds it, else
// "unknown". ModelContractCapabilities takes any string; a row the check
// refuses would lose the node's whole registration.
func ContractType(declared string) string {
	t := strings.ToLower(declared)
	if slices.Contains(ContractTypes, t) {
		return t
	}
	return "unknown"
}

func (d *Declared) empty() bool {
	return d.ContractType == nil && d.ContractVersion == nil && len(d.IntentTypes) == 0 && len(d.Protocols) == 0 &&
		len(d.CapabilityTags) == 0 && len(d.SubscribeTopics) == 0 && len(d.PublishTopics) == 0
}

// JSON returns the declaration's JSON object (what the reducer state keeps
// under "declared").
func (d *Declared) JSON() []byte {
	if d.raw != nil {
		return d.raw
	}
	b, _ := json.Marshal(d)
	return b
}

// Equal reports whether d and o declare the same (nil declares nothing).
func (d *Declared) Equal(o *Declared) bool {
	if d == o {
		return true
	}
	if d == nil || o == nil {
		return false
	}
	return eqStrPtr(d.ContractType, o.ContractType) && eqStrPtr(d.ContractVersion, o.ContractVersion) &&
		slices.Equal(d.IntentTypes, o.IntentTypes) && slices.Equal(d.Protocols, o.Protocols) &&
		slices.Equal(d.CapabilityTags, o.CapabilityTags) && slices.Equal(d.SubscribeTopics, o.SubscribeTopics) &&
		slices.Equal(d.PublishTopics, o.PublishTopics)
}

// HasTopics reports whether the declaration names any topic.
func (d *Declared) HasTopics() bool {
	return d != nil && (len(d.SubscribeTopics) > 0 || len(d.PublishTopics) > 0)
}

func uniq(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// CapabilityTags is the projection's capability_tags of a node (sorted,
// unique): the tags its contract declares, plus the derived ones —
// node-type:<type>, and for a node exposing an MCP tool (MCPTool: an
// orchestrator whose declared_capabilities.mcp.expose is true) mcp-enabled
// and mcp-tool:<name>, the tags MCP discovery reads from the projection
// (spec 4.8).
func (s *NodeState) CapabilityTags() []string {
	var tags []string
	if s.Declared != nil {
		tags = slices.Clone(s.Declared.CapabilityTags)
	}
	tags = append(tags, "node-type:"+s.NodeType)
	if s.MCPTool != nil {
		tags = append(tags, "mcp-enabled", "mcp-tool:"+*s.MCPTool)
	}
	sort.Strings(tags)
	return slices.Compact(tags)
}

// NodeTopics is a node's entry in the topic catalog's view (the
// node-topics topic): the topics an ACTIVE node declares.
type NodeTopics struct {
	NodeID          uuid.UUID
	NodeType        string
	SubscribeTopics []string
	PublishTopics   []string
	Sequence        int64
}

// TopicsChange is a change of a node's entry in the topic catalog's view:
// Topics is the node's new entry, nil to remove it (a tombstone).
type TopicsChange struct {
	NodeID uuid.UUID
	Topics *NodeTopics
}

// contributesTopics reports whether s has an entry in the view: the node is
// ACTIVE and declares topics.
func contributesTopics(s *NodeState) bool {
	return s != nil && s.State == Active && s.Declared.HasTopics()
}

// TopicsChangeOf returns the change of the view a decision moving a node
// from old to next makes, nil when there is none: the node gains an entry
// (it becomes ACTIVE with topics), loses it (it leaves ACTIVE, or an update
// drops its topics) or its topics change (an update in place).
func TopicsChangeOf(old, next *NodeState) *TopicsChange {
	was, is := contributesTopics(old), contributesTopics(next)
	switch {
	case !was && !is:
		return nil
	case was && !is:
		return &TopicsChange{NodeID: old.NodeID}
	case was && slices.Equal(old.Declared.SubscribeTopics, next.Declared.SubscribeTopics) &&
		slices.Equal(old.Declared.PublishTopics, next.Declared.PublishTopics) && old.NodeType == next.NodeType:
		return nil
	}
	return &TopicsChange{NodeID: next.NodeID, Topics: &NodeTopics{
		NodeID: next.NodeID, NodeType: next.NodeType, Sequence: next.Sequence,
		SubscribeTopics: next.Declared.SubscribeTopics, PublishTopics: next.Declared.PublishTopics,
	}}
}

// DeclaredFromJSON decodes a declaration as Declared.JSON writes it
// (normalised again, so a hand-written one is too); ok is false when b is
// not such an object.
func DeclaredFromJSON(b []byte) (d *Declared, ok bool) {
	var x Declared
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, false
	}
	in := DeclaredInput{
		HasContract: x.ContractType != nil || x.ContractVersion != nil,
		IntentTypes: x.IntentTypes, Protocols: x.Protocols, CapabilityTags: x.CapabilityTags,
		SubscribeTopics: x.SubscribeTopics, PublishTopics: x.PublishTopics,
	}
	if x.ContractType != nil {
		in.ContractType = *x.ContractType
	}
	if x.ContractVersion != nil {
		in.ContractVersion = *x.ContractVersion
	}
	return NewDeclared(in), true
}
