package nodescmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/admin"
)

// Ways an operator command is sent (--via).
const (
	viaKafka = "kafka"
	viaGRPC  = "grpc"
)

// publishing are the flags of the commands that publish an operator
// command (deregister, evict): on Kafka directly, or through the
// registry's AdminService.
type publishing struct {
	via            string
	brokers, topic string
	reason, as     string
	output         string
}

func (p *publishing) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.via, "via", viaKafka, "kafka: publish on the operator topic; grpc: ask the registry's AdminService (the --addr, TLS and --token flags of nodes)")
	cmd.Flags().StringVar(&p.brokers, "brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	cmd.Flags().StringVar(&p.topic, "topic", topics.RegistrationAdmin, "operator command topic")
	cmd.Flags().StringVar(&p.reason, "reason", "", fmt.Sprintf("why (logged with the command, at most %d characters)", operator.MaxReason))
	cmd.Flags().StringVar(&p.as, "as", "", `who asks (default "$USER@hostname")`)
	cmd.Flags().StringVarP(&p.output, "output", "o", "text", "text or json")
}

// check validates the flags shared by both commands.
func (p *publishing) check() error {
	switch p.via {
	case "", viaKafka, viaGRPC: // "": a zero publishing, kafka
	default:
		return errors.New("--via must be kafka or grpc")
	}
	if p.output != "text" && p.output != "json" {
		return errors.New("-o must be text or json")
	}
	if err := topics.Validate(p.topic); err != nil {
		return fmt.Errorf("--topic: %w", err)
	}
	// --topic is canonical; the record goes to it on KAFKA_TOPIC_NAMESPACE,
	// where the orchestrator of that namespace reads.
	ns, err := topicns.FromEnv()
	if err != nil {
		return err
	}
	p.topic = ns.Physical(p.topic)
	if utf8.RuneCountInString(p.reason) > operator.MaxReason {
		return fmt.Errorf("--reason: at most %d characters", operator.MaxReason)
	}
	if p.as != "" && (strings.TrimSpace(p.as) == "" || utf8.RuneCountInString(p.as) > operator.MaxRequestedBy) {
		return fmt.Errorf("--as: not blank, at most %d characters", operator.MaxRequestedBy)
	}
	return nil
}

// command returns the command's common fields: a new id, now, reason and
// who asks.
func (p *publishing) command(kind operator.Kind) *operator.Command {
	by := strings.TrimSpace(p.as)
	if by == "" {
		by = defaultRequestedBy()
	}
	return &operator.Command{CommandID: uuid.New(), Command: kind, Reason: strings.TrimSpace(p.reason), RequestedBy: by,
		RequestedAt: envelope.Time{Time: time.Now().UTC().Truncate(time.Microsecond)}}
}

// defaultRequestedBy is "$USER@hostname", each part reduced to characters
// that need no quoting anywhere the command is logged or shown.
func defaultRequestedBy() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, _ := os.Hostname()
	return sanitizeIdentity(name, "unknown") + "@" + sanitizeIdentity(host, "unknown-host")
}

// sanitizeIdentity keeps letters, digits, '.', '_' and '-' of s (others
// become '_'), at most 64 of them; def when nothing is left.
func sanitizeIdentity(s, def string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if strings.Trim(b.String(), "_") == "" {
		return def
	}
	return b.String()
}

// evictState returns the projection state name of an --state value, which
// must name a state an evict may take.
func evictState(s string) (string, error) {
	v, ok := stateValue(s)
	if !ok {
		return "", fmt.Errorf("--state %q is not a registration state", s)
	}
	name := strings.ToLower(stateName(v))
	if !slices.Contains(operator.EvictableStates, name) {
		return "", fmt.Errorf("--state %s cannot be evicted (its nodes are not in Consul); use one of %s",
			name, strings.Join(operator.EvictableStates, ", "))
	}
	return name, nil
}

// olderThan parses --older-than: a Go duration (90m, 24h), whole seconds,
// at least 0.
func olderThan(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, errors.New("--older-than is required (e.g. 30m, 24h)")
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("--older-than %q is not a duration (e.g. 30m, 24h)", s)
	case d < 0:
		return 0, fmt.Errorf("--older-than %s: must be at least 0", s)
	case d%time.Second != 0:
		return 0, fmt.Errorf("--older-than %s: whole seconds only", s)
	}
	return int64(d / time.Second), nil
}

// buildDeregister returns the command of `nodes deregister ID`.
func buildDeregister(id string, p *publishing) (*operator.Command, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	node, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil || node == uuid.Nil {
		return nil, fmt.Errorf("NODE_ID %q is not a node UUID", id)
	}
	c := p.command(operator.Deregister)
	c.NodeID = &node
	return c, c.Validate()
}

// buildEvict returns the command of `nodes evict`.
func buildEvict(state, age string, p *publishing) (*operator.Command, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(state) == "" {
		return nil, fmt.Errorf("--state is required: one of %s", strings.Join(operator.EvictableStates, ", "))
	}
	st, err := evictState(state)
	if err != nil {
		return nil, err
	}
	secs, err := olderThan(age)
	if err != nil {
		return nil, err
	}
	c := p.command(operator.Evict)
	c.State, c.OlderThanSeconds = &st, &secs
	return c, c.Validate()
}

// published is what a publishing command prints.
type published struct {
	Command       operator.Kind `json:"command"`
	CommandID     string        `json:"command_id"`
	CorrelationID string        `json:"correlation_id"`
	Topic         string        `json:"topic"`
	Partition     int32         `json:"partition"`
	Offset        int64         `json:"offset"`
}

// publish sends c on the operator topic, waits for the broker's ack and
// prints the command's ids.
func publish(cmd *cobra.Command, p *publishing, timeout time.Duration, c *operator.Command) error {
	bs := bus.ParseBrokers(p.brokers)
	if len(bs) == 0 {
		return errors.New("no Kafka brokers: set --brokers or KAFKA_BOOTSTRAP_SERVERS")
	}
	source := os.Getenv("KAFKA_ENVIRONMENT")
	if source == "" {
		source = os.Getenv("ONEX_ENVIRONMENT")
	}
	if source == "" {
		source = "local"
	}
	msg, corr, err := admin.Record(p.topic, source, c, uuid.Nil)
	if err != nil {
		return err
	}
	cfg, err := bus.NewConfig(bus.Options{Brokers: bs, ClientID: "onexctl"})
	if err != nil {
		return err
	}
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = timeout, timeout, timeout
	what := string(c.Command)
	sp, err := sarama.NewSyncProducer(bs, cfg)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: connect to %s: %s (nothing was published)\n", what,
			infraerr.RedactBootstrapServers(p.brokers), infraerr.SanitizeError(kafkasec.Explain(err, cfg)))
		return &envelopecmd.ExitError{Code: 1}
	}
	defer sp.Close()
	part, off, err := sp.SendMessage(msg)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: publish to %s: %s (nothing was published)\n", what, p.topic, infraerr.SanitizeError(err))
		return &envelopecmd.ExitError{Code: 1}
	}
	return printPublished(cmd.OutOrStdout(), p.output, published{Command: c.Command, CommandID: c.CommandID.String(),
		CorrelationID: corr.String(), Topic: p.topic, Partition: part, Offset: off})
}

func printPublished(w io.Writer, output string, r published) error {
	if output == "json" {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	_, err := fmt.Fprintf(w, "%s published: command_id=%s correlation_id=%s topic=%s partition=%d offset=%d\n",
		r.Command, r.CommandID, r.CorrelationID, r.Topic, r.Partition, r.Offset)
	return err
}

// send sends the command the way --via says.
func send(cmd *cobra.Command, p *publishing, c *conn, op *operator.Command) error {
	if p.via != viaGRPC {
		return publish(cmd, p, c.timeout, op)
	}
	for _, f := range []string{"brokers", "topic"} {
		if cmd.Flags().Changed(f) {
			return fmt.Errorf("--%s applies to --via kafka only: the registry publishes on its own topic (ONEX_REGISTRATION_ADMIN_TOPIC)", f)
		}
	}
	return request(cmd, c, p.output, op)
}

// requested is what a command sent through the AdminService prints.
type requested struct {
	Command       operator.Kind `json:"command"`
	CommandID     string        `json:"command_id"`
	CorrelationID string        `json:"correlation_id"`
	Topic         string        `json:"topic"`
	Via           string        `json:"via"`
}

// request asks the registry's AdminService to publish op and prints the
// ids of the command it published. The registry makes its own command id.
func request(cmd *cobra.Command, c *conn, output string, op *operator.Command) error {
	cc, err := c.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := registryv1.NewAdminServiceClient(cc)
	ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
	defer cancel()
	var resp *registryv1.OperatorCommandResponse
	switch op.Command {
	case operator.Deregister:
		resp, err = client.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: op.NodeID.String(),
			Reason: op.Reason, RequestedBy: op.RequestedBy})
	case operator.Evict:
		st, _ := stateValue(*op.State) // a name buildEvict took from the enum
		resp, err = client.EvictNodes(ctx, &registryv1.EvictNodesRequest{State: st, OlderThan: durationpb.New(op.OlderThan()),
			Reason: op.Reason, RequestedBy: op.RequestedBy})
	default:
		return fmt.Errorf("%s cannot be sent through the registry", op.Command)
	}
	if err != nil {
		return failed(cmd, err)
	}
	r := requested{Command: op.Command, CommandID: resp.GetCommandId(), CorrelationID: resp.GetCorrelationId(), Topic: resp.GetTopic(), Via: viaGRPC}
	w := cmd.OutOrStdout()
	if output == "json" {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	_, err = fmt.Fprintf(w, "%s published by the registry: command_id=%s correlation_id=%s topic=%s\n", r.Command, r.CommandID, r.CorrelationID, r.Topic)
	return err
}

func deregisterCommand(c *conn) *cobra.Command {
	p := &publishing{}
	cmd := &cobra.Command{
		Use:   "deregister NODE_ID",
		Short: "Take one node out of Consul (operator command on Kafka, or --via grpc)",
		Long: `Publishes a deregister operator command for the node on the registration-admin
topic and prints its command id and correlation id once the broker has it.
With --via grpc the registry's AdminService publishes it instead (it needs
admin rights there: --token, or a client certificate it lists).
The reducer decides it in order with the node's own messages: a registered (or
registering) node is taken out of Consul and moves to liveness_expired, as on a
shutdown; a node in any other state is left as it is. It does not ban the node:
one that is still alive registers again with its next introspection.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := buildDeregister(args[0], p)
			if err != nil {
				return err
			}
			return send(cmd, p, c, op)
		},
	}
	p.flags(cmd)
	return cmd
}

func evictCommand(c *conn) *cobra.Command {
	p := &publishing{}
	var state, age string
	cmd := &cobra.Command{
		Use:   "evict --state STATE --older-than DURATION",
		Short: "Deregister every node long in a state (operator command on Kafka, or --via grpc)",
		Long: `Publishes an evict operator command on the registration-admin topic and prints
its command id and correlation id once the broker has it (with --via grpc, the
registry's AdminService publishes it, given admin rights there). The reducer
deregisters every node whose state is --state and whose last state change is
older than --older-than when it decides the command. --state is one of
` + strings.Join(operator.EvictableStates, ", ") + ` (in any case); --older-than is a
duration in whole seconds (30m, 24h, 0s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, err := buildEvict(state, age, p)
			if err != nil {
				return err
			}
			return send(cmd, p, c, op)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "state to evict from: "+strings.Join(operator.EvictableStates, ", "))
	cmd.Flags().StringVar(&age, "older-than", "", "minimum time since the node's last state change (e.g. 30m, 24h)")
	p.flags(cmd)
	return cmd
}
