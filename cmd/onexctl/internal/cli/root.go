// Package cli assembles onexctl's command tree. Each command lives in its own
// package under internal/ and is added here.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/contractscmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/dlqcmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/nodescmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/replay"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/simulatecmd"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/topicscmd"
)

// ExitError carries a process exit code out of a command. Commands that have
// already printed their own diagnostics return it to exit quietly.
type ExitError = envelopecmd.ExitError

// Root builds the command tree with the given streams.
func Root(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "onexctl",
		Short:         "Operate the ONEX registration fleet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(envelopecmd.Command(), topicscmd.Command(), nodescmd.NodesCommand(), nodescmd.SnapshotsCommand(), simulatecmd.Command(), dlqcmd.Command(), contractscmd.Command())
	reducer := &cobra.Command{Use: "reducer", Short: "Reducer tools"}
	reducer.AddCommand(replay.Command())
	root.AddCommand(reducer)
	return root
}

// Execute runs onexctl with args and returns the exit code: 0 on success, 1
// when the command failed (its message already printed), 2 on usage errors.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := Root(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	fmt.Fprintln(stderr, "onexctl:", err)
	return 2
}
