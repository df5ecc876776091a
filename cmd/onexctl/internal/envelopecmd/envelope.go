// Package envelopecmd implements `onexctl envelope decode`.
package envelopecmd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// ExitError ends a command with a code after it printed its own message.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Command returns `envelope` with its `decode` subcommand.
func Command() *cobra.Command {
	c := &cobra.Command{Use: "envelope", Short: "Work with ONEX event envelopes"}
	c.AddCommand(&cobra.Command{
		Use:   "decode",
		Short: "Read one envelope JSON on stdin and print it re-encoded canonically",
		Long: "Reads one ONEX event envelope (JSON) on stdin, validates it strictly and prints\n" +
			"it re-encoded in the Python runtime's canonical form. On bad input prints one\n" +
			"line naming the field and exits 1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "read stdin:", err)
				return &ExitError{Code: 1}
			}
			out, err := envelope.Canonicalize(in)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), oneLine(err))
				return &ExitError{Code: 1}
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	})
	return c
}

func oneLine(err error) string {
	var fe *envelope.FieldError
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Error()
	}
	return strings.Join(strings.Fields(msg), " ")
}
