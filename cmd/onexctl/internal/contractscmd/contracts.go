// Package contractscmd implements `onexctl contracts validate`: the check
// every service runs on its own contract at start-up, over every contract of
// a directory, plus the checks that span services (pkg/contract.ValidateDir).
package contractscmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/contract"
	consul "github.com/omninode/onex-fleet/services/consul-effect/expect"
	projector "github.com/omninode/onex-fleet/services/projector-effect/expect"
	reducer "github.com/omninode/onex-fleet/services/reducer/expect"
	orchestrator "github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
)

// Expects returns each service's expectations of its contract, by the
// service's directory name: the same ones the services check at start-up.
func Expects() map[string]contract.Expect {
	return map[string]contract.Expect{
		orchestrator.Service: orchestrator.Contract(),
		reducer.Service:      reducer.Contract(),
		projector.Service:    projector.Contract(),
		consul.Service:       consul.Contract(),
	}
}

// Command returns `contracts` with validate.
func Command() *cobra.Command {
	c := &cobra.Command{Use: "contracts", Short: "Check the services' contract.yaml files"}
	c.AddCommand(validateCmd())
	return c
}

func validateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check every contract the way the services do at start-up, and across services",
		Long: "Checks <dir>/<service>/contract.yaml of every service: strict YAML, topic names valid and in the\n" +
			"platform registry, routes complete, the reducer's state machine equal to its code, retry and\n" +
			"breaker numbers in range, each contract against its service's code; then that every emitted\n" +
			"intent type is routed to a service that subscribes to its topic and handles it.\n" +
			"Prints one line per problem (file:line: field path: problem) and exits 1 on any; exits 0 when\n" +
			"every contract is good. See docs/contracts.md.",
		Args: cobra.NoArgs,
	}
	def := os.Getenv("ONEX_CONTRACTS_DIR")
	if def == "" {
		def = "contracts"
	}
	dir := c.Flags().String("dir", def, "contracts directory (default $ONEX_CONTRACTS_DIR, else ./contracts)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ps, err := contract.ValidateDir(*dir, Expects())
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Fprintln(cmd.OutOrStdout(), p.String())
		}
		if len(ps) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d problem(s) in %s\n", len(ps), *dir)
			return &envelopecmd.ExitError{Code: 1}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: every contract is valid\n", *dir)
		return nil
	}
	return c
}
