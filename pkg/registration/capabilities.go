package registration

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// NodeCapabilities is ModelNodeCapabilities, the contract-declared
// capability flags (stored verbatim in the projection's capabilities
// column). extra="allow": unknown keys are kept in Extra, in input order,
// and written after the declared fields.
type NodeCapabilities struct {
	Postgres       bool
	Read           bool
	Write          bool
	Database       bool
	Transactions   bool
	Processing     bool
	BatchSize      *int
	MaxBatch       *int
	SupportedTypes []string
	Routing        bool
	Feature        bool
	// Config is a JSON object of arbitrary values (nil encodes as {}).
	Config       json.RawMessage
	FeatureFlags FeatureFlags
	MCP          *MCPContractConfig
	Extra        pyjson.Members
}

func (c *NodeCapabilities) pyName() string { return "ModelNodeCapabilities" }

func (c *NodeCapabilities) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraAllow, Extras: &c.Extra, Fields: []pyjson.Field{
		pyjson.Prop("postgres", &c.Postgres, pyjson.Bool),
		pyjson.Prop("read", &c.Read, pyjson.Bool),
		pyjson.Prop("write", &c.Write, pyjson.Bool),
		pyjson.Prop("database", &c.Database, pyjson.Bool),
		pyjson.Prop("transactions", &c.Transactions, pyjson.Bool),
		pyjson.Prop("processing", &c.Processing, pyjson.Bool),
		pyjson.Prop("batch_size", &c.BatchSize, nullInt),
		pyjson.Prop("max_batch", &c.MaxBatch, nullInt),
		pyjson.Prop("supported_types", &c.SupportedTypes, stringList),
		pyjson.Prop("routing", &c.Routing, pyjson.Bool),
		pyjson.Prop("feature", &c.Feature, pyjson.Bool),
		pyjson.Prop("config", &c.Config, pyjson.RawObject),
		pyjson.Prop("feature_flags", &c.FeatureFlags, featureFlagsC),
		pyjson.Prop("mcp", &c.MCP, nullMCPC),
	}}
}

// Validate checks the nested feature flags and MCP configuration.
func (c *NodeCapabilities) Validate() error {
	var mcpErr error
	if c.MCP != nil {
		mcpErr = nested("mcp", c.MCP.Validate())
	}
	return firstErr(nested("feature_flags", c.FeatureFlags.Validate()), mcpErr)
}

// FeatureFlags is ModelFeatureFlags (extra="forbid").
type FeatureFlags struct {
	Flags          map[string]bool
	FlagMetadata   map[string]FeatureFlagMetadata
	DefaultEnabled bool
}

func (f *FeatureFlags) pyName() string { return "ModelFeatureFlags" }

func (f *FeatureFlags) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Prop("flags", &f.Flags, boolMapC),
		pyjson.Prop("flag_metadata", &f.FlagMetadata, flagMetadataMapC),
		pyjson.Prop("default_enabled", &f.DefaultEnabled, pyjson.Bool),
	}}
}

// Validate checks every flag's metadata.
func (f *FeatureFlags) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(f.FlagMetadata)) {
		m := f.FlagMetadata[name]
		if err := m.Validate(); err != nil {
			return nested("flag_metadata", nested(name, err))
		}
	}
	return nil
}

// FeatureFlagMetadata is ModelFeatureFlagMetadata (extra="forbid").
type FeatureFlagMetadata struct {
	Description string
	CreatedAt   *envelope.Time
	UpdatedAt   *envelope.Time
	Owner       *string
	Tags        []string
	// RolloutPercentage is 0..100; default 100.
	RolloutPercentage int
}

func (m *FeatureFlagMetadata) pyName() string { return "ModelFeatureFlagMetadata" }

func (m *FeatureFlagMetadata) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Def("description", &m.Description, pyjson.String, ""),
		pyjson.Prop("created_at", &m.CreatedAt, nullTime),
		pyjson.Prop("updated_at", &m.UpdatedAt, nullTime),
		pyjson.Prop("owner", &m.Owner, nullString),
		pyjson.Prop("tags", &m.Tags, stringList),
		pyjson.Def("rollout_percentage", &m.RolloutPercentage, pyjson.Int, 100),
	}}
}

// Validate checks rollout_percentage is 0..100.
func (m *FeatureFlagMetadata) Validate() error {
	return intRange("rollout_percentage", m.RolloutPercentage, 0, 100)
}

// MCPContractConfig is ModelMCPContractConfig (unknown keys ignored).
type MCPContractConfig struct {
	Expose      bool
	ToolName    *string
	Description *string
	// TimeoutSeconds is 1..300; default 30.
	TimeoutSeconds int
}

func (m *MCPContractConfig) pyName() string { return "ModelMCPContractConfig" }

func (m *MCPContractConfig) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraIgnore, Fields: []pyjson.Field{
		pyjson.Prop("expose", &m.Expose, pyjson.Bool),
		pyjson.Prop("tool_name", &m.ToolName, nullString),
		pyjson.Prop("description", &m.Description, nullString),
		pyjson.Def("timeout_seconds", &m.TimeoutSeconds, pyjson.Int, 30),
	}}
}

// Validate checks timeout_seconds is 1..300.
func (m *MCPContractConfig) Validate() error {
	return intRange("timeout_seconds", m.TimeoutSeconds, 1, 300)
}

// NodeMetadata is ModelNodeMetadata. extra="allow": unknown keys are kept
// in Extra and written back after the declared fields.
type NodeMetadata struct {
	Version     *string
	Environment *string
	Region      *string
	Cluster     *string
	Description *string
	Priority    *int
	Key         *string
	Key1        *string
	Meta        *string
	Extra       pyjson.Members
}

func (m *NodeMetadata) pyName() string { return "ModelNodeMetadata" }

func (m *NodeMetadata) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraAllow, Extras: &m.Extra, Fields: []pyjson.Field{
		pyjson.Prop("version", &m.Version, nullString),
		pyjson.Prop("environment", &m.Environment, nullString),
		pyjson.Prop("region", &m.Region, nullString),
		pyjson.Prop("cluster", &m.Cluster, nullString),
		pyjson.Prop("description", &m.Description, nullString),
		pyjson.Prop("priority", &m.Priority, nullInt),
		pyjson.Prop("key", &m.Key, nullString),
		pyjson.Prop("key1", &m.Key1, nullString),
		pyjson.Prop("meta", &m.Meta, nullString),
	}}
}

// Validate has nothing to check; it exists for uniformity.
func (m *NodeMetadata) Validate() error { return nil }

var (
	capabilitiesC = object[NodeCapabilities]()
	featureFlagsC = object[FeatureFlags]()
	flagMetadataC = object[FeatureFlagMetadata]()
	mcpC          = object[MCPContractConfig]()
	nodeMetadataC = object[NodeMetadata]()
)
