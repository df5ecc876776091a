// Package envelope is the ONEX event envelope (ModelEventEnvelope of
// omnibase_core, envelope version 2.3.0 as in the pinned omnibase-core
// 0.47.57: 22 fields) and the Kafka headers the Python event bus writes
// (ModelEventHeaders), wire-compatible with the Python runtime.
//
// Decoding is strict where Python's pydantic validation is strict (UUIDs,
// priority range, SemVer objects, timezone-aware timestamps, no blank
// tenant_id or producer) and accepts every 2.x envelope (the 19-field 2.1.0
// ones too). Unknown top-level keys are kept (Envelope.Extra explains why,
// although Python has forbidden them since 2.2.0); DecodeTolerant, for
// envelopes from ONEX nodes, also reports every unknown key at every level.
// Encoding reproduces Python's json.dumps output byte for byte: separators
// ", " and ": ", key order = model field order, every field present,
// ASCII-only escaping. For an envelope produced by the Python bus,
// Encode(Decode(value)) returns value unchanged.
//
// The payload is carried as raw JSON; decode it with the model package of
// its topic (for registration topics, package registration), for example
// through [DecodePayload] or [DecodePayloadTolerant].
package envelope
