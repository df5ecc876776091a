// Package proto holds the fleet's protobuf definitions and their generated Go
// code:
//
//   - onex/registry/v1: the registry read API and the admin API of operator
//     commands, both gRPC services of the projector effect;
//   - onex/fleet/v1: the records of the fleet's internal Kafka topics
//     (messages only, no services): the reducer's liveness checkpoint and
//     the canonical reducer input. The Python-facing topics stay JSON; see
//     docs/architecture.md, "Two wires", for which topic carries what and
//     the rules for changing a message.
//
// Regenerate with `make proto` from the repository root;
// TestGeneratedCodeIsCurrent fails when a committed file is stale.
package proto
