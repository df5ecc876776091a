// Package pyjson decodes and encodes JSON the way the Python ONEX runtime
// (pydantic v2 models serialized with json.dumps) expects it.
//
// It provides what the envelope and registration packages share:
//
//   - strict object decoding from a declared field list ([Spec], [Field]):
//     exact (case-sensitive) key matching, required fields, defaults, and a
//     per-model policy for unknown keys ([ExtraIgnore], [ExtraForbid],
//     [ExtraAllow]) mirroring pydantic's extra="ignore|forbid|allow";
//   - a tolerant mode of the same decoding ([Tolerant],
//     [DecodeObjectTolerant], Codec.DecodeTolerant) for messages from
//     producers newer than this code: unknown keys at every level are
//     reported with their paths ([Unknown]) instead of failing, everything
//     else is checked as strictly;
//   - errors that name the JSON path of the offending value ([FieldError]);
//   - descriptors of the JSON values every codec accepts ([Type], [Model]),
//     so that tests can compare the Go models with the JSON Schemas of the
//     Python ones (package schemacheck);
//   - a [Writer] that produces Python json.dumps output: separators ", " and
//     ": ", ensure_ascii string escaping, float repr, key order = field
//     declaration order.
//
// The package never panics on untrusted input and never uses encoding/json's
// case-insensitive struct matching.
package pyjson
