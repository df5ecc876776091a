package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// containers runs the servers as Docker containers through
// testcontainers-go: for machines with a Docker engine (developers'
// laptops, CI elsewhere). This machine has none, so the project's own CI
// uses the local provider; this one is compiled and vetted there but runs
// only where Docker is.
//
// Every container's port is bound to a free host port chosen before it
// starts, so Kafka can advertise it and a stopped container comes back at
// the same address (the degradation tests stop and resume servers).
type containers struct {
	cts     map[Server]testcontainers.Container
	servers Servers
}

// Images: Apache Kafka in KRaft mode (the version scripts/infra runs),
// PostgreSQL 15, Consul 1.13.9 (the last MPL-2.0 release).
const (
	kafkaImage    = "apache/kafka:4.1.1"
	postgresImage = "postgres:15-alpine"
	consulImage   = "hashicorp/consul:1.13.9"
)

func newContainers() *containers { return &containers{cts: map[Server]testcontainers.Container{}} }

func (c *containers) Name() string { return "testcontainers" }

// freePort asks the kernel for a free loopback port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// bind publishes containerPort on hostPort of the loopback interface.
func bind(containerPort, hostPort string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{
			network.MustParsePort(containerPort): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
		}
	})
}

func (c *containers) Start(ctx context.Context) (Servers, error) {
	kport, err := freePort()
	if err != nil {
		return Servers{}, err
	}
	c.cts[Kafka], err = testcontainers.Run(ctx, kafkaImage,
		testcontainers.WithExposedPorts("9092/tcp"),
		bind("9092/tcp", kport),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://127.0.0.1:" + kport,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
		}),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("9092/tcp").WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		return Servers{}, fmt.Errorf("kafka container: %w", err)
	}
	pport, err := freePort()
	if err != nil {
		return Servers{}, err
	}
	c.cts[Postgres], err = testcontainers.Run(ctx, postgresImage,
		testcontainers.WithExposedPorts("5432/tcp"),
		bind("5432/tcp", pport),
		testcontainers.WithEnv(map[string]string{"POSTGRES_DB": "omnibase_infra", "POSTGRES_USER": "onex", "POSTGRES_PASSWORD": "onex"}),
		testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(time.Minute)),
	)
	if err != nil {
		return Servers{}, fmt.Errorf("postgres container: %w", err)
	}
	cport, err := freePort()
	if err != nil {
		return Servers{}, err
	}
	c.cts[Consul], err = testcontainers.Run(ctx, consulImage,
		testcontainers.WithCmd("agent", "-dev", "-client", "0.0.0.0"),
		testcontainers.WithExposedPorts("8500/tcp"),
		bind("8500/tcp", cport),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/v1/status/leader").WithPort("8500/tcp").WithStartupTimeout(time.Minute)),
	)
	if err != nil {
		return Servers{}, fmt.Errorf("consul container: %w", err)
	}
	c.servers = Servers{
		KafkaBrokers: []string{"127.0.0.1:" + kport},
		PostgresURL:  "postgresql://onex:onex@127.0.0.1:" + pport + "/omnibase_infra?sslmode=disable",
		ConsulAddr:   "127.0.0.1:" + cport,
	}
	return c.servers, nil
}

func (c *containers) Stop(ctx context.Context, s Server) error {
	ct, ok := c.cts[s]
	if !ok {
		return fmt.Errorf("no %s container", s)
	}
	timeout := 10 * time.Second
	return ct.Stop(ctx, &timeout)
}

func (c *containers) Resume(ctx context.Context, s Server) error {
	ct, ok := c.cts[s]
	if !ok {
		return fmt.Errorf("no %s container", s)
	}
	return ct.Start(ctx)
}

func (c *containers) Close(ctx context.Context) error {
	var errs []error
	for _, ct := range c.cts {
		errs = append(errs, ct.Terminate(ctx))
	}
	return errors.Join(errs...)
}
