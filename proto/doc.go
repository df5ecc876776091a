// Package proto holds the fleet's protobuf definitions and their generated Go
// code (onex/registry/v1: the registry read API and the admin API of
// operator commands, both served by the projector effect). Regenerate with
// `make proto` from the repository root.
package proto
