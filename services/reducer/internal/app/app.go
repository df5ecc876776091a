// Package app wires the reducer service: config, the FSM check against the
// contract, the transactional consume–decide–produce loop, health and metrics.
package app

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/expect"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// Readiness conditions.
const (
	condTopics   = "topics"
	condFSM      = "fsm_contract"
	condAssigned = "state_restored"
)

// HandlerName labels the reducer's handler latency
// (onex_handler_duration_seconds{handler}): one observation per batch, from
// its first record taken to its transaction committed.
const HandlerName = "registration_reducer"

// Secrets is what the reducer prefetches from Infisical at boot
// (docs/configuration.md): the kafka transport's keys, optional: the bus
// reads the Kafka security ones the transport brings (TransportExtras), the
// spec's three are fetched for parity with the Python runtime.
var Secrets = infisical.Needs{
	Service:    "reducer",
	Transports: []string{infisical.Kafka},
	Optional:   infisical.TransportKeys[infisical.Kafka],
}

// Main runs the reducer until SIGTERM and returns the process exit code.
func Main() int {
	svc, err := service.Boot("reducer", Secrets, condTopics, condFSM, condAssigned)
	if err != nil {
		return 2 // reported by Boot
	}
	path := ContractPath(svc.Config)
	c, err := contract.Load(path, expect.Contract())
	if err != nil {
		svc.Log.Error("refusing to start: invalid contract", "contract", path, "error", err.Error())
		return 2
	}
	svc.Health.Set(condFSM, true)
	settings, err := LoadSettings(svc.Config, c)
	if err != nil {
		svc.Log.Error("invalid configuration", "error", infraerr.SanitizeError(err))
		return 2
	}
	r, err := New(svc, settings)
	if err != nil {
		svc.Log.Error("startup failed", "error", infraerr.SanitizeError(err))
		return 1
	}
	if err := svc.Run(r.Run, svc.SelfRegistration(service.Self{
		Type: registration.NodeKindReducer, Name: "node_registration_reducer", Role: "registry",
		Capabilities: registration.NodeCapabilities{Processing: true,
			SupportedTypes: []string{"node-introspection", "node-registration-acked", "node-heartbeat", "runtime-tick"}},
	})); err != nil {
		return 1
	}
	return 0
}

// Reducer is the running service.
type Reducer struct {
	svc      *service.Service
	settings Settings
	brokers  []string
	metrics  *metrics
	busm     *bus.Metrics
	dlqm     *dlq.Metrics

	// restoring counts the partitions of the current session whose state
	// is not restored yet; /readyz is false until it reaches 0.
	restoring atomic.Int32
	// inflight counts the input records taken and not yet committed
	// (pending_message_count).
	inflight atomic.Int64
	// restore reads a partition's state; tests wrap it to hold a restore.
	restore func(ctx context.Context, client sarama.Client, topic string, p int32, upTo int64) (*state.Partition, int, error)
}

// New builds the reducer.
func New(svc *service.Service, s Settings) (*Reducer, error) {
	if s.SnapshotsTopic == "" {
		s.SnapshotsTopic = topics.RegistrationSnapshots
	}
	if s.LivenessTopic == "" {
		s.LivenessTopic = topics.RegistrationLiveness
	}
	if s.CheckpointInterval <= 0 {
		s.CheckpointInterval = time.Second
	}
	brokers := bus.ParseBrokers(svc.Config.KafkaBootstrap)
	reg := svc.Registerer()
	dlqm, err := dlq.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := &Reducer{svc: svc, settings: s, brokers: brokers, metrics: newMetrics(reg), busm: bus.NewMetrics(reg).Handler(HandlerName),
		dlqm: dlqm, restore: restore}
	svc.Health.SetInFlight(r.inflight.Load)
	return r, nil
}
