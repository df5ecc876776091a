// Package nodescmd implements `onexctl nodes` (list, get, watch over the
// projector's gRPC RegistryService; deregister and evict, operator commands
// published directly on Kafka or through the projector's AdminService) and
// `onexctl snapshots rebuild` (republish the registration snapshot topic
// from the registry). The gRPC connection takes TLS, a client certificate
// and an admin token from flags or ONEX_REGISTRY_* variables (pkg/grpcsec).
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
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/snapshot"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
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

// The registry connection's variables, the flags' defaults.
const (
	envRegistryTLS        = "ONEX_REGISTRY_TLS"
	envRegistryCAFile     = "ONEX_REGISTRY_CA_FILE"
	envRegistryCertFile   = "ONEX_REGISTRY_CERT_FILE"
	envRegistryKeyFile    = "ONEX_REGISTRY_KEY_FILE"
	envRegistryServerName = "ONEX_REGISTRY_SERVER_NAME"
	envRegistryToken      = "ONEX_REGISTRY_TOKEN"
)

// tlsNames are the flags Explain's hints name.
var tlsNames = grpcsec.Names{CAFile: "--ca-file/" + envRegistryCAFile, CertFile: "--cert-file/" + envRegistryCertFile,
	ServerName: "--server-name/" + envRegistryServerName}

type conn struct {
	addr    string
	timeout time.Duration

	tls                       bool
	caFile, certFile, keyFile string
	serverName                string
	// token is --token; empty, ONEX_REGISTRY_TOKEN is read when dialling,
	// so that the token is never a flag default `--help` would print.
	token string
}

func (c *conn) flags(cmd *cobra.Command) {
	env := func(name string) string { return strings.TrimSpace(os.Getenv(name)) }
	useTLS, _ := config.Bool(envRegistryTLS, false) // a bad value is refused when dialling
	f := cmd.PersistentFlags()
	f.StringVar(&c.addr, "addr", defaultAddr(), "registry API address host:port (env ONEX_REGISTRY_ADDR)")
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of one call (watch: of connecting)")
	f.BoolVar(&c.tls, "tls", useTLS, "connect with TLS even without --ca-file (the system roots) (env "+envRegistryTLS+")")
	f.StringVar(&c.caFile, "ca-file", env(envRegistryCAFile), "PEM CA certificates the registry's certificate must chain to; turns TLS on (env "+envRegistryCAFile+")")
	f.StringVar(&c.certFile, "cert-file", env(envRegistryCertFile), "PEM client certificate for a registry with mTLS; turns TLS on (env "+envRegistryCertFile+")")
	f.StringVar(&c.keyFile, "key-file", env(envRegistryKeyFile), "the client certificate's unencrypted PEM key (env "+envRegistryKeyFile+")")
	f.StringVar(&c.serverName, "server-name", env(envRegistryServerName), "name the registry's certificate must hold, when not the --addr host; turns TLS on (env "+envRegistryServerName+")")
	f.StringVar(&c.token, "token", "", "bearer token for admin calls; prefer env "+envRegistryToken+" (a flag shows in the process list)")
}

// settings are the connection's security settings from the flags and the
// environment.
func (c *conn) settings() (grpcsec.ClientSettings, error) {
	if _, err := config.Bool(envRegistryTLS, false); err != nil {
		return grpcsec.ClientSettings{}, err
	}
	token := c.token
	if token == "" {
		token = os.Getenv(envRegistryToken)
	}
	return grpcsec.ClientSettings{TLS: c.tls, CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile,
		ServerName: c.serverName, Token: config.Secret(token)}, nil
}

// dial returns a connection to the registry; it connects with the first
// call. An error is about the settings (exit 2), never the network.
func (c *conn) dial() (*grpc.ClientConn, error) {
	cs, err := c.settings()
	if err != nil {
		return nil, err
	}
	opts, err := cs.DialOptions(c.addr)
	if errors.Is(err, grpcsec.ErrTokenNeedsTLS) {
		return nil, fmt.Errorf("registry %s: --token/%s: %w", c.addr, envRegistryToken, err)
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", c.addr, err)
	}
	cc, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", c.addr, err)
	}
	return cc, nil
}

func (c *conn) client() (registryv1.RegistryServiceClient, func(), error) {
	cc, err := c.dial()
	if err != nil {
		return nil, nil, err
	}
	return registryv1.NewRegistryServiceClient(cc), func() { cc.Close() }, nil
}

// failed prints a call's error as one line and returns exit code 1. A call
// the registry refused for its credentials says so; a TLS handshake that
// failed says why (an untrusted certificate, …) rather than gRPC's
// transport text.
func failed(cmd *cobra.Command, err error) error {
	line, refused := grpcsec.Explain(err, tlsNames)
	if refused {
		line = "the registry refused the call: " + line
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", commandName(cmd), line)
	return &envelopecmd.ExitError{Code: 1}
}

// commandName is the command and its parent ("nodes list"), as an operator
// typed them after "onexctl".
func commandName(cmd *cobra.Command) string {
	if p := cmd.Parent(); p != nil {
		return p.Name() + " " + cmd.Name()
	}
	return cmd.Name()
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
					return failed(cmd, err)
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
				return failed(cmd, err)
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
				return failed(cmd, err)
			}
			out := cmd.OutOrStdout()
			for {
				m, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
						return nil
					}
					return failed(cmd, err)
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
			ns, err := topicns.FromEnv()
			if err != nil {
				return err
			}
			client, closeFn, err := c.client()
			if err != nil {
				return err
			}
			defer closeFn()
			r := &snapshot.Rebuilder{Registry: client, Brokers: bs, Topic: ns.Physical(topic), Force: force, DryRun: dryRun}
			rep, err := r.Run(cmd.Context())
			if err != nil {
				return failed(cmd, err)
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

	var livenessBrokers, livenessTopic string
	liveness := &cobra.Command{
		Use:   "liveness",
		Short: "Print the reducer's liveness checkpoint, one JSON line per key",
		Long: `Reads the reducer's liveness checkpoint topic and prints the latest record of
every key as the compacted topic keeps it: per reducer partition a head (the
input offset the checkpoint covers) and buckets of the nodes whose heartbeats
moved their liveness since their last snapshot (onex.fleet.v1.LivenessCheckpoint,
printed as protojson; docs/reducer.md, "Liveness checkpoint").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs := bus.ParseBrokers(livenessBrokers)
			if len(bs) == 0 {
				return fmt.Errorf("no Kafka brokers: set --brokers or KAFKA_BOOTSTRAP_SERVERS")
			}
			if err := topics.Validate(livenessTopic); err != nil {
				return fmt.Errorf("--topic: %w", err)
			}
			ns, err := topicns.FromEnv()
			if err != nil {
				return err
			}
			if _, err := snapshot.PrintLiveness(cmd.Context(), bs, ns.Physical(livenessTopic), time.Second, cmd.OutOrStdout()); err != nil {
				return failed(cmd, err)
			}
			return nil
		},
	}
	liveness.Flags().StringVar(&livenessBrokers, "brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	liveness.Flags().StringVar(&livenessTopic, "topic", topics.RegistrationLiveness, "liveness checkpoint topic")
	root.AddCommand(liveness)
	return root
}
