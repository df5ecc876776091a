package pipeline

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Wire is the encoding a process writes its internal records in: the
// reducer input, the intents, the effect results and the orchestrator's
// aggregation state (docs/architecture.md, "Two wires"). Readers always take
// both; the setting only chooses what is written.
type Wire int32

const (
	// WireProtobuf writes the protobuf messages of proto/onex/fleet/v1 (the
	// default).
	WireProtobuf Wire = iota
	// WireJSON writes the older JSON forms every earlier fleet version reads:
	// the first step of an upgrade from such a version, and the first step
	// back before returning to one (see the rollout in docs/architecture.md).
	WireJSON
)

// EnvWire names the setting: ONEX_INTERNAL_WIRE=protobuf|json.
const EnvWire = "ONEX_INTERNAL_WIRE"

// String is the setting's value for w.
func (w Wire) String() string {
	if w == WireJSON {
		return "json"
	}
	return "protobuf"
}

// ParseWire reads ONEX_INTERNAL_WIRE's value; empty is the default,
// protobuf.
func ParseWire(s string) (Wire, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "protobuf":
		return WireProtobuf, nil
	case "json":
		return WireJSON, nil
	}
	return WireProtobuf, fmt.Errorf("%s must be protobuf or json, not %q", EnvWire, s)
}

// writes is process-wide: every writer of a process follows one setting,
// fixed at start-up (service.New) before any record is written.
var writes atomic.Int32

// SetWrites sets the encoding this process writes internal records in.
func SetWrites(w Wire) { writes.Store(int32(w)) }

// WritesJSON reports whether internal records are to be written in their
// JSON forms.
func WritesJSON() bool { return Wire(writes.Load()) == WireJSON }
