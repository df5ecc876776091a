// Package harness runs the fleet end to end for the e2e suite: it gets
// real Kafka, PostgreSQL and Consul servers from a Provider, builds the
// four services and runs them as separate processes, and gives tests the
// checks a user would make (rows in PostgreSQL, services in Consul, records
// on topics).
//
// Two providers hand the tests the same Servers:
//
//   - local (the default): the project's scripts/infra, with its own state
//     directory and ports (Kafka 29092, PostgreSQL 5446, Consul 28500), so
//     the suite can stop and restart servers without disturbing anything
//     else on the machine. Each run starts from empty servers.
//   - testcontainers (ONEX_E2E_PROVIDER=testcontainers, needs a Docker
//     engine): Kafka, PostgreSQL and Consul containers through
//     testcontainers-go.
package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Server names one of the three servers.
type Server string

const (
	Kafka    Server = "kafka"
	Postgres Server = "postgres"
	Consul   Server = "consul"
)

// Servers are the addresses the fleet and the tests use.
type Servers struct {
	KafkaBrokers []string
	// PostgresURL is a DSN with credentials: never log it.
	PostgresURL string
	// ConsulAddr is host:port of the Consul agent's HTTP API.
	ConsulAddr string
}

// Provider starts, stops and restarts the servers.
type Provider interface {
	// Name is "local" or "testcontainers".
	Name() string
	// Start brings every server up (from empty data) and returns where
	// they are.
	Start(ctx context.Context) (Servers, error)
	// Stop takes one server down (the degradation suites); its data stays.
	Stop(ctx context.Context, s Server) error
	// Resume brings a stopped server back at the same address with its data.
	Resume(ctx context.Context, s Server) error
	// Close stops everything the provider started.
	Close(ctx context.Context) error
}

// EnvProvider selects the provider: "local" (default) or "testcontainers".
const EnvProvider = "ONEX_E2E_PROVIDER"

// NewProvider returns the provider EnvProvider selects. repoRoot is the
// repository (for the local provider's scripts).
func NewProvider(repoRoot string) (Provider, error) {
	switch v := strings.TrimSpace(os.Getenv(EnvProvider)); v {
	case "", "local":
		return newLocal(repoRoot), nil
	case "testcontainers":
		return newContainers(), nil
	default:
		return nil, fmt.Errorf("%s=%q: want local or testcontainers", EnvProvider, v)
	}
}
