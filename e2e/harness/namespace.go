package harness

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Namespace is the test process's topic namespace (KAFKA_TOPIC_NAMESPACE):
// every fleet, Go node, Python node and test producer of the process works
// on "<Namespace>.<topic>", so the suites leave nothing on the topics `make
// run` and a deployment use, and read nothing an earlier run left. The
// tests name topics canonically: the harness puts the namespace on at its
// seams (ProvisionTopics, NewFleet, NewRecorder, WaitConsumed,
// StartPythonNodes, NamespaceProducers) and Record.Topic is canonical.
var Namespace = newNamespace()

func newNamespace() topicns.Namespace {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return topicns.MustParse("e2e" + hex.EncodeToString(b))
}

// NamespaceEnv is the KAFKA_TOPIC_NAMESPACE=<Namespace> variable for a
// child process.
func NamespaceEnv() string { return topicns.EnvVar + "=" + Namespace.String() }

// NamespaceProducers makes every producer built from cfg send a record
// addressed to a canonical topic to its name on Namespace, so a test
// publishes with the registry's constants and pkg/node's records as they
// are.
func NamespaceProducers(cfg *sarama.Config) {
	cfg.Producer.Interceptors = append(cfg.Producer.Interceptors, namespacing{})
}

type namespacing struct{}

// OnSend runs before the producer picks the partition; it is idempotent,
// so a retried record is not prefixed twice.
func (namespacing) OnSend(m *sarama.ProducerMessage) { m.Topic = Namespace.Physical(m.Topic) }
