// Package pyjson decodes and encodes JSON the way the Python ONEX runtime
// (pydantic v2 models serialized with json.dumps) expects it.
//
// It provides three things the envelope and registration packages share:
//
//   - strict object decoding from a declared field list ([Spec], [Field]):
//     exact (case-sensitive) key matching, required fields, defaults, and a
//     per-model policy for unknown keys ([ExtraIgnore], [ExtraForbid],
//     [ExtraAllow]) mirroring pydantic's extra="ignore|forbid|allow";
//   - errors that name the JSON path of the offending value ([FieldError]);
//   - a [Writer] that produces Python json.dumps output: separators ", " and
//     ": ", ensure_ascii string escaping, float repr, key order = field
//     declaration order.
//
// The package never panics on untrusted input and never uses encoding/json's
// case-insensitive struct matching.
package pyjson
