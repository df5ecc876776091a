// Package dlqcmd implements `onexctl dlq list|show|stats|replay` over the
// dead-letter topics (spec 8.4; procedures in docs/dlq-runbook.md). The
// reading, deciding and writing is pkg/dlq/replay; this package adds the
// flags, the output and the PostgreSQL history (dlq_replay_history).
package dlqcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq/replay"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Command returns `dlq` with list, show, stats and replay.
func Command() *cobra.Command {
	c := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, count and replay dead-lettered records",
		Long: `Reads the DLQ topics (onex.dlq.*) without a consumer group: every partition
from its oldest record up to where it ended when the command started, so
nothing is committed and nothing changes for anybody else.

Procedures (sizing, dry run, incident windows, quarantine): docs/dlq-runbook.md.`,
	}
	c.AddCommand(listCmd(), showCmd(), statsCmd(), replayCmd())
	return c
}

// common are the flags of every subcommand.
type common struct {
	brokers    string
	dlqTopics  []string
	quarantine string
	idle       time.Duration
	output     string
	// ns is KAFKA_TOPIC_NAMESPACE, applied by connect to the topic flags
	// (canonical names) and by replay to the original topics.
	ns topicns.Namespace
}

func (o *common) register(c *cobra.Command) {
	c.Flags().StringVar(&o.brokers, "brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
	c.Flags().StringSliceVar(&o.dlqTopics, "dlq-topic", nil, "DLQ topic to read, repeatable (default: every onex.dlq.* topic of the broker but the quarantine)")
	c.Flags().StringVar(&o.quarantine, "quarantine-topic", topics.DLQQuarantine, "the quarantine topic")
	c.Flags().DurationVar(&o.idle, "partition-idle", replay.DefaultIdle, "take a partition as read when it delivers nothing for this long")
	_ = c.Flags().MarkHidden("partition-idle")
}

// filters are the selection flags (list, stats, replay).
type filters struct {
	originalTopics []string
	errorTypes     []string
	correlationIDs []string
	start, end     string
}

func (f *filters) register(c *cobra.Command) {
	c.Flags().StringSliceVar(&f.originalTopics, "filter-topic", nil, "only records whose original topic is this, repeatable")
	c.Flags().StringSliceVar(&f.errorTypes, "filter-error-type", nil, "only records with this error_type (e.g. InfraConnectionError), repeatable")
	c.Flags().StringSliceVar(&f.correlationIDs, "filter-correlation-id", nil, "only records with this correlation id, repeatable")
	c.Flags().StringVar(&f.start, "start-time", "", "only records that failed at or after this ISO-8601 time (UTC when no offset is given)")
	c.Flags().StringVar(&f.end, "end-time", "", "only records that failed at or before this ISO-8601 time (UTC when no offset is given)")
}

func (f *filters) build() (replay.Filter, error) {
	out := replay.Filter{OriginalTopics: f.originalTopics, ErrorTypes: f.errorTypes, CorrelationIDs: f.correlationIDs}
	var err error
	if f.start != "" {
		if out.Start, err = replay.ParseTime(f.start); err != nil {
			return out, fmt.Errorf("--start-time: %w", err)
		}
	}
	if f.end != "" {
		if out.End, err = replay.ParseTime(f.end); err != nil {
			return out, fmt.Errorf("--end-time: %w", err)
		}
	}
	return out, out.Validate()
}

// usage marks an error as a usage error (exit 2).
type usage struct{ error }

// failed prints a sanitized error and returns exit code 1.
func failed(cmd *cobra.Command, what string, err error) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", what, infraerr.SanitizeError(err))
	return &envelopecmd.ExitError{Code: 1}
}

// conn is an open broker connection.
type conn struct {
	client sarama.Client
	opts   *common
}

func (o *common) connect() (*conn, error) {
	if o.output != "table" && o.output != "json" {
		return nil, usage{fmt.Errorf("-o must be table or json")}
	}
	bs := bus.ParseBrokers(o.brokers)
	if len(bs) == 0 {
		return nil, usage{errors.New("no brokers: set --brokers or KAFKA_BOOTSTRAP_SERVERS")}
	}
	ns, err := topicns.FromEnv()
	if err != nil {
		return nil, usage{err}
	}
	o.ns = ns
	o.quarantine = ns.Physical(o.quarantine)
	o.dlqTopics = ns.PhysicalAll(o.dlqTopics)
	cfg, err := replay.NewClientConfig(bs, "onexctl-dlq")
	if err != nil {
		return nil, usage{err}
	}
	client, err := bus.NewClient(bs, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", infraerr.RedactBootstrapServers(o.brokers), err)
	}
	return &conn{client: client, opts: o}, nil
}

func (c *conn) Close() { _ = c.client.Close() }

func (c *conn) scanner() replay.Scanner { return replay.Scanner{Client: c.client, Idle: c.opts.idle} }

// topics returns the --dlq-topic values, or every DLQ topic of the broker.
func (c *conn) topics() ([]string, error) {
	if len(c.opts.dlqTopics) > 0 {
		return c.opts.dlqTopics, nil
	}
	ts, err := replay.DLQTopics(c.client, c.opts.ns, c.opts.quarantine)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errors.New("the broker has no onex.dlq.* topic")
	}
	return ts, nil
}

// run wraps a subcommand body: usage errors exit 2 with the message, others
// exit 1 with the sanitized message.
func run(cmd *cobra.Command, what string, body func(ctx context.Context) error) error {
	err := body(cmd.Context())
	var u usage
	switch {
	case err == nil:
		return nil
	case errors.As(err, &u):
		return u.error
	default:
		var ee *envelopecmd.ExitError
		if errors.As(err, &ee) {
			return err
		}
		return failed(cmd, what, err)
	}
}
