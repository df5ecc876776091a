// Package nodescmd implements `onexctl nodes` (list, get, watch over the
// projector's gRPC RegistryService; deregister and evict, operator commands
// published directly on Kafka) and `onexctl snapshots rebuild` (republish
// the registration snapshot topic from the registry).
//
// Wire them into the root command with
//
//	root.AddCommand(nodescmd.NodesCommand(), nodescmd.SnapshotsCommand())
package nodescmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/topics"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/snapshot"
)

// DefaultAddr is the registry API address when neither --addr nor
// ONEX_REGISTRY_ADDR is given (the projector's default ONEX_GRPC_ADDR).
const DefaultAddr = "127.0.0.1:8086"

func defaultAddr() string {
	if a := strings.TrimSpace(os.Getenv("ONEX_REGISTRY_ADDR")); a != "" {
		return a
	}
	return DefaultAddr
}

type conn struct {
	addr    string
	timeout time.Duration
}

func (c *conn) flags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.addr, "addr", defaultAddr(), "registry API address host:port (env ONEX_REGISTRY_ADDR)")
	cmd.PersistentFlags().DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of one call (watch: of connecting)")
}

func (c *conn) client() (registryv1.RegistryServiceClient, func(), error) {
	cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("registry %s: %w", c.addr, err)
	}
	return registryv1.NewRegistryServiceClient(cc), func() { cc.Close() }, nil
}

// failed prints a call's error and returns exit code 1.
func failed(cmd *cobra.Command, what string, err error) error {
	if s, ok := status.FromError(err); ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s: %s\n", what, s.Code(), s.Message())
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", what, err)
	}
	return &envelopecmd.ExitError{Code: 1}
}

var jsonLine = protojson.MarshalOptions{UseProtoNames: true}

// NodesCommand returns `nodes` with its subcommands list, get, watch,
// deregister and evict.
func NodesCommand() *cobra.Command {
	c := &conn{}
	root := &cobra.Command{Use: "nodes", Short: "Read the node registry (the projector's gRPC API) and deregister nodes"}
	c.flags(root)
	root.AddCommand(listCommand(c), getCommand(c), watchCommand(c), deregisterCommand(c), evictCommand(c))
	return root
}

func listCommand(c *conn) *cobra.Command {
	var state, nodeType, capability, contractType, output string
	var tags, protocols, intentTypes []string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes, optionally filtered by state, type, tags, protocols and intent types",
		Long: `Lists the registry's nodes ordered by node id, following pages until the end
(or --limit). --state takes a registration state in any case (ACTIVE, active,
awaiting_ack, ...). --tag, --protocol and --intent-type are repeatable and keep
the nodes that carry every value given (--tag mcp-enabled --tag mcp-tool:search).
--capability matches a capability tag or a capability the node declares as true
(e.g. postgres). Output is a table, or JSON lines with -o json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &registryv1.ListNodesRequest{NodeType: nodeType, Capability: capability, PageSize: 500,
				CapabilityTags: tags, Protocols: protocols, IntentTypes: intentTypes, ContractType: contractType}
			if state != "" {
				v, ok := stateValue(state)
				if !ok {
					return fmt.Errorf("--state %q is not a registration state", state)
				}
				req.State = v
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("-o must be table or json")
			}
			client, closeFn, err := c.client()
			if err != nil {
				return err
			}
			defer closeFn()
			var nodes []*registryv1.Node
			for {
				ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
				resp, err := client.ListNodes(ctx, req)
				cancel()
				if err != nil {
					return failed(cmd, "list", err)
				}
				nodes = append(nodes, resp.GetNodes()...)
				if resp.GetNextPageToken() == "" || (limit > 0 && len(nodes) >= limit) {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if limit > 0 && len(nodes) > limit {
				nodes = nodes[:limit]
			}
			return printNodes(cmd.OutOrStdout(), nodes, output)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only nodes in this state (e.g. ACTIVE)")
	cmd.Flags().StringVar(&nodeType, "type", "", "only nodes of this type (effect, compute, reducer, orchestrator)")
	cmd.Flags().StringVar(&capability, "capability", "", "only nodes with this capability tag or declared capability")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "only nodes with this capability tag (repeatable: all of them)")
	cmd.Flags().StringArrayVar(&protocols, "protocol", nil, "only nodes with this protocol (repeatable: all of them)")
	cmd.Flags().StringArrayVar(&intentTypes, "intent-type", nil, "only nodes with this intent type (repeatable: all of them)")
	cmd.Flags().StringVar(&contractType, "contract-type", "", "only nodes of this contract type (effect, compute, reducer, orchestrator, unknown)")
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many nodes (0: all)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func stateValue(s string) (registryv1.RegistrationState, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "REGISTRATION_STATE_") {
		u = "REGISTRATION_STATE_" + u
	}
	v, ok := registryv1.RegistrationState_value[u]
	return registryv1.RegistrationState(v), ok && v != 0
}

func stateName(s registryv1.RegistrationState) string {
	return strings.TrimPrefix(s.String(), "REGISTRATION_STATE_")
}

func printNodes(w io.Writer, nodes []*registryv1.Node, output string) error {
	if output == "json" {
		for _, n := range nodes {
			b, err := jsonLine.Marshal(n)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, string(b))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE_ID\tSTATE\tTYPE\tNAME\tVERSION\tLAST_HEARTBEAT\tUPDATED\tTAGS")
	for _, n := range nodes {
		hb := "-"
		if n.GetLastHeartbeatAt() != nil {
			hb = n.GetLastHeartbeatAt().AsTime().UTC().Format(time.RFC3339)
		}
		name := n.GetNodeName()
		if name == "" {
			name = "-"
		}
		// Last, as the one column of varying width; no spaces inside, so
		// a row still splits into fields.
		tags := strings.Join(n.GetCapabilityTags(), ",")
		if tags == "" {
			tags = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.GetNodeId(), stateName(n.GetState()), n.GetNodeType(), name,
			n.GetNodeVersion(), hb, n.GetUpdatedAt().AsTime().UTC().Format(time.RFC3339), tags)
	}
	return tw.Flush()
}

func getCommand(c *conn) *cobra.Command {
	return &cobra.Command{
		Use:   "get NODE_ID",
		Short: "Show one node as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, closeFn, err := c.client()
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			resp, err := client.GetNode(ctx, &registryv1.GetNodeRequest{NodeId: args[0]})
			if err != nil {
				return failed(cmd, "get", err)
			}
			b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(resp.GetNode())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

func watchCommand(c *conn) *cobra.Command {
	var resume string
	var initial, checkpoints bool
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Stream node changes as JSON lines until interrupted",
		Long: `Prints one JSON line per changed node: {"node": {...}, "resume_token": "..."}.
A change may be printed more than once (delivery is at-least-once). To continue
later without missing a change, pass the last resume_token printed to
--resume-token; --checkpoints also prints the token-only checkpoint lines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, closeFn, err := c.client()
			if err != nil {
				return err
			}
			defer closeFn()
			stream, err := client.WatchNodes(cmd.Context(), &registryv1.WatchNodesRequest{ResumeToken: resume, SendInitial: initial})
			if err != nil {
				return failed(cmd, "watch", err)
			}
			out := cmd.OutOrStdout()
			for {
				m, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
						return nil
					}
					return failed(cmd, "watch", err)
				}
				if m.GetNode() == nil && !checkpoints {
					continue
				}
				b, err := jsonLine.Marshal(m)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			}
		},
	}
	cmd.Flags().StringVar(&resume, "resume-token", "", "continue after a previous watch")
	cmd.Flags().BoolVar(&initial, "initial", false, "first print every existing node (without --resume-token)")
	cmd.Flags().BoolVar(&checkpoints, "checkpoints", false, "also print checkpoint lines that carry only a resume token")
	return cmd
}

// SnapshotsCommand returns `snapshots` with its subcommand rebuild.
func SnapshotsCommand() *cobra.Command {
	c := &conn{}
	root := &cobra.Command{Use: "snapshots", Short: "Registration snapshot topic tools"}
	c.flags(root)
	var brokers, topic string
	var force, dryRun bool
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Republish the registration snapshot topic from the registry",
		Long: `Reads every node from the registry API and publishes one snapshot per node
(key = node id) to the compacted snapshot topic, as the reducer writes it: the
value is the bare ModelRegistrationSnapshot, the x-onex-reducer-state header the
reducer state the reducer restores from (and the consul effect derives the
node's Consul service from). A node whose snapshot on the topic is already at
least as new (by reducer sequence) is skipped, so a rebuild never moves a
running reducer backwards; --force publishes every node. Prints a JSON report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs := bus.ParseBrokers(brokers)
			if len(bs) == 0 {
				return fmt.Errorf("no Kafka brokers: set --brokers or KAFKA_BOOTSTRAP_SERVERS")
			}
			if err := topics.Validate(topic); err != nil {
				return fmt.Errorf("--topic: %w", err)
			}
			client, closeFn, err := c.client()
			if err != nil {
				return err
			}
			defer closeFn()
			r := &snapshot.Rebuilder{Registry: client, Brokers: bs, Topic: topic, Force: force, DryRun: dryRun}
			rep, err := r.Run(cmd.Context())
			if err != nil {
				return failed(cmd, "rebuild", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), `{"nodes": %d, "published": %d, "skipped_newer": %d, "invalid": %d, "dry_run": %v}`+"\n",
				rep.Nodes, rep.Published, rep.SkippedNewer, len(rep.Invalid), dryRun)
			for _, s := range rep.Invalid {
				fmt.Fprintln(cmd.ErrOrStderr(), "invalid row:", s)
			}
			if len(rep.Invalid) > 0 {
				return &envelopecmd.ExitError{Code: 1}
			}
			return nil
		},
	}
	rebuild.Flags().StringVar(&brokers, "brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	rebuild.Flags().StringVar(&topic, "topic", topics.RegistrationSnapshots, "snapshot topic")
	rebuild.Flags().BoolVar(&force, "force", false, "publish every node even over a newer snapshot")
	rebuild.Flags().BoolVar(&dryRun, "dry-run", false, "compare and report, publish nothing")
	root.AddCommand(rebuild)
	return root
}
