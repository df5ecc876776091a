// Package replay implements `onexctl reducer replay`.
package replay

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	reducerreplay "github.com/omninode/onex-fleet/services/reducer/replay"
)

// Command returns `replay`.
func Command() *cobra.Command {
	p := decide.DefaultParams()
	var ack, interval, window, resendInitial, resendMax float64
	c := &cobra.Command{
		Use:   "replay",
		Short: "Run a scenario through the reducer's decision code, with no cluster",
		Long: `Reads JSON lines on stdin, each {"topic": T, "received_at": RFC3339, "value": V},
where T is the node-introspection, node-registration-acked, node-heartbeat,
runtime-tick or registration-admin topic and V the record value exactly as on the
wire. A line may also be a reducer input as the topic carries it in protobuf
(onex.fleet.v1.ReducerInput), written as protojson: a heartbeat decoded at
ingress, {"topic": T, "received_at": RFC3339, "heartbeat": {"node_id": ...,
"timestamp": ..., "timestamp_utc_offset_seconds": ..., "correlation_id": ...}}.
received_at is the decision's "now" (for a tick, its own now). Starting from empty state, prints
one JSON line per message the reducer would publish:
  {"kind": "event", "topic": T, "key": K, "value": V}
  {"kind": "intent", "intent_type": I, "topic": T, "key": K, "value": V}
then {"final_states": {"<node_id>": "<state>", ...}}. An intent's value is its JSON
form, the envelope around the intent, although the intents topic carries it in
protobuf (onex.fleet.v1.Intent). The accepted event's value is
the bare ModelNodeRegistrationAccepted; it appears again for each re-send to a node
that has not acked yet. Unusable lines are reported on stderr with their line
number and skipped; the exit code is then 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				name string
				v    float64
				dst  *time.Duration
			}{{"ack-timeout", ack, &p.AckTimeout}, {"liveness-interval", interval, &p.LivenessInterval}, {"liveness-window", window, &p.LivenessWindow}} {
				if f.v <= 0 {
					return fmt.Errorf("--%s must be > 0 seconds", f.name)
				}
				*f.dst = time.Duration(f.v * float64(time.Second))
			}
			if resendInitial < 0 || resendMax < 0 || resendInitial > 0 && resendMax < resendInitial {
				return fmt.Errorf("--accepted-resend-initial and --accepted-resend-max must be >= 0 seconds, the maximum at least the initial interval")
			}
			p.AcceptedResendInitial = time.Duration(resendInitial * float64(time.Second))
			p.AcceptedResendMax = time.Duration(resendMax * float64(time.Second))
			skipped, err := reducerreplay.Run(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), p)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "replay:", err)
				return &envelopecmd.ExitError{Code: 1}
			}
			if skipped > 0 {
				return &envelopecmd.ExitError{Code: 1}
			}
			return nil
		},
	}
	c.Flags().Float64Var(&ack, "ack-timeout", p.AckTimeout.Seconds(), "ack timeout in seconds")
	c.Flags().Float64Var(&interval, "liveness-interval", p.LivenessInterval.Seconds(), "liveness deadline after activation, seconds")
	c.Flags().Float64Var(&window, "liveness-window", p.LivenessWindow.Seconds(), "liveness deadline extension per heartbeat, seconds")
	c.Flags().Float64Var(&resendInitial, "accepted-resend-initial", p.AcceptedResendInitial.Seconds(),
		"first re-send of the accepted event to a node that has not acked, seconds after the original (0: no re-sends)")
	c.Flags().Float64Var(&resendMax, "accepted-resend-max", p.AcceptedResendMax.Seconds(), "cap of the doubling interval between re-sends, seconds")
	return c
}
