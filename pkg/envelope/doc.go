// Package envelope is the ONEX event envelope (ModelEventEnvelope of
// omnibase_core) and the Kafka headers the Python event bus writes
// (ModelEventHeaders), wire-compatible with the Python runtime.
//
// Decoding is strict where Python's pydantic validation is strict (UUIDs,
// priority range, SemVer objects, timezone-aware timestamps) and lenient
// where Python is lenient (unknown top-level keys are accepted). Encoding
// reproduces Python's json.dumps output byte for byte: separators ", " and
// ": ", key order = model field order, every field present, ASCII-only
// escaping. For an envelope produced by the Python bus,
// Encode(Decode(value)) returns value unchanged.
//
// The payload is carried as raw JSON; decode it with the model package of
// its topic (for registration topics, package registration), for example
// through [DecodePayload].
package envelope
