// Package topicscmd implements `onexctl topics validate|provision|list`.
package topicscmd

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Command returns `topics` with validate, provision and list.
func Command() *cobra.Command {
	c := &cobra.Command{Use: "topics", Short: "Validate, provision and list ONEX topics"}
	c.AddCommand(validateCmd(), provisionCmd(), listCmd())
	return c
}

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate NAME...",
		Short: "Check topic names against the ONEX taxonomy",
		Long:  "Exits 0 when every name is valid; otherwise prints one line per bad name saying why and exits 1.",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, name := range args {
				if err := topics.Validate(name); err != nil {
					fmt.Fprintln(cmd.OutOrStdout(), err)
					bad++
				}
			}
			if bad > 0 {
				return &envelopecmd.ExitError{Code: 1}
			}
			return nil
		},
	}
}

func brokersFlag(c *cobra.Command) *string {
	return c.Flags().String("brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
}

func admin(brokers string) (sarama.ClusterAdmin, error) {
	bs := bus.ParseBrokers(brokers)
	if len(bs) == 0 {
		return nil, fmt.Errorf("no brokers: set --brokers or KAFKA_BOOTSTRAP_SERVERS")
	}
	// The admin config takes the Kafka security settings as it can (a
	// refused connection when they are wrong); checking them first names
	// the variable at fault instead.
	if _, err := config.LoadKafkaSecurity(); err != nil {
		return nil, err
	}
	cfg := topics.NewAdminConfig("onexctl")
	a, err := sarama.NewClusterAdmin(bs, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", infraerr.RedactBootstrapServers(brokers), infraerr.SanitizeError(kafkasec.Explain(err, cfg)))
	}
	return a, nil
}

func provisionCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "provision",
		Short: "Create every missing platform topic and report drift",
		Long: "Creates each registry topic that the broker lacks with the registry's partitions and configs.\n" +
			"Existing topics are never changed: a partition count or config that differs from the\n" +
			"registry is reported as drift, and the command exits 1.",
		Args: cobra.NoArgs,
	}
	brokers := brokersFlag(c)
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		opts, err := topics.OptionsFromEnv(os.LookupEnv)
		if err != nil {
			return err
		}
		a, err := admin(*brokers)
		if err != nil {
			return err
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
		defer cancel()
		rep, err := topics.Provision(ctx, a, topics.Platform(), opts)
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "provision:", infraerr.SanitizeError(err))
			return &envelopecmd.ExitError{Code: 1}
		}
		out := cmd.OutOrStdout()
		for _, t := range rep.Created {
			fmt.Fprintln(out, "created  ", t)
		}
		fmt.Fprintf(out, "in sync   %d topics\n", len(rep.InSync))
		for _, d := range rep.Drift {
			fmt.Fprintln(out, "DRIFT    ", d)
		}
		if rep.HasDrift() {
			return &envelopecmd.ExitError{Code: 1}
		}
		return nil
	}
	return c
}

func listCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List the registry's topics next to what the broker has",
		Args:  cobra.NoArgs,
	}
	brokers := brokersFlag(c)
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		// The registry's topics on KAFKA_TOPIC_NAMESPACE, as provision
		// creates them.
		opts, err := topics.OptionsFromEnv(os.LookupEnv)
		if err != nil {
			return err
		}
		ns := opts.Namespace
		a, err := admin(*brokers)
		if err != nil {
			return err
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
		defer cancel()
		states, err := topics.Describe(ctx, a)
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "list:", infraerr.SanitizeError(err))
			return &envelopecmd.ExitError{Code: 1}
		}
		have := map[string]topics.TopicState{}
		for _, s := range states {
			have[s.Name] = s
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TOPIC\tKIND\tPARTITIONS(spec)\tPARTITIONS(broker)\tCLEANUP")
		for _, s := range topics.Platform() {
			name := ns.Physical(s.Name)
			got := "missing"
			cleanup := s.Configs[topics.ConfigCleanupPolicy]
			if st, ok := have[name]; ok {
				got = fmt.Sprint(st.Partitions)
				if v, ok := st.Configs[topics.ConfigCleanupPolicy]; ok {
					cleanup = v
				}
				delete(have, name)
			}
			if cleanup == "" {
				cleanup = "delete"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", name, s.Kind, s.Partitions, got, cleanup)
		}
		var extra []string
		for name := range have {
			if strings.HasPrefix(name, ns.Prefix()+"onex.") {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		for _, name := range extra {
			fmt.Fprintf(w, "%s\t-\t-\t%d\t(not in registry)\n", name, have[name].Partitions)
		}
		return w.Flush()
	}
	return c
}
