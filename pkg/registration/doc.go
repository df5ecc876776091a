// Package registration holds the ONEX registration message models (spec §2)
// with strict, pydantic-compatible decoding and Python-ordered encoding.
//
// Every model has a Validate method and MarshalJSON/UnmarshalJSON; the
// top-level ones (the messages themselves, not the models nested in them)
// also have a Decode<Name> function. RequestIntrospection, a raw JSON
// object without a Python model, is read leniently instead (see its doc).
// Decoding guarantees:
//
//   - input that is not JSON fails with an error wrapping envelope.ErrSyntax;
//   - every other failure is an *envelope.FieldError whose Field is the JSON
//     path of the offending value ("node_type", "endpoints.health",
//     "event_bus.publish_topics[0].topic") and whose Model is the Python
//     class name (e.g. "ModelNodeIntrospectionEvent");
//   - models that are extra="forbid" in Python reject unknown keys, naming
//     the key; NodeCapabilities and NodeMetadata (extra="allow") keep unknown
//     keys in their Extra field and write them back on encode;
//   - key matching is exact (case-sensitive), JSON types are not coerced
//     (a string is not an int), timestamps must carry a timezone offset,
//     enumerations accept only their listed values;
//   - absent optional fields take the Python defaults.
//
// The models ONEX nodes send (introspection, heartbeat, ack) also have a
// Decode<Name>Tolerant function, for nodes newer than this code: unknown
// keys, at every level, are returned with their JSON paths
// (pyjson.Unknown) instead of failing — an introspection also keeps them in
// IntrospectionEvent.Extras —, and every other check is the strict one's.
// The models the fleet itself emits have only the strict decoder.
//
// The models follow the pinned Python package (omnibase-infra 0.38.76); the
// schema drift test (schema_drift_test.go) compares them with its JSON
// Schemas (interop/schemas) field by field.
//
// MarshalJSON writes every field in Python declaration order with
// json.dumps separators (encoding/json.Marshal compacts that output). It
// does not validate; call Validate before publishing a Go-built value.
//
// Models inside envelopes are decoded from envelope.Envelope.Payload, e.g.
// envelope.DecodePayload(env, registration.DecodeIntrospectionEvent).
package registration
