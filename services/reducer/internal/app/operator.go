package app

import (
	"log/slog"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
)

// operatorResult is what one operator command did in one partition.
type operatorResult struct {
	op      decide.Operator
	command string
	outcome string // applied | no_op
	nodes   []uuid.UUID
	reason  string // the decision's reason when nothing was applied
}

func operatorOutcome(op decide.Operator, res processor.Result) operatorResult {
	o := operatorResult{op: op, command: "deregister", outcome: "no_op"}
	if op.Evict {
		o.command = "evict"
	}
	for _, d := range res.Decisions {
		if d.Emit && d.State != nil {
			o.nodes = append(o.nodes, d.State.NodeID)
		} else if o.reason == "" {
			o.reason = d.Reason
		}
	}
	if len(o.nodes) > 0 {
		o.outcome = "applied"
	}
	return o
}

// log writes who asked for what and why, and what it did: operator
// commands are rare and every one of them matters to whoever audits the
// registry.
func (o operatorResult) log(l *slog.Logger) {
	attrs := []any{"command", o.command, "outcome", o.outcome, "command_id", o.op.CommandID.String(),
		"correlation_id", o.op.CorrelationID.String(), "requested_by", o.op.RequestedBy, "reason", o.op.Reason,
		"nodes_deregistered", len(o.nodes)}
	if o.op.Evict {
		attrs = append(attrs, "state", string(o.op.State), "older_than_seconds", int64(o.op.OlderThan.Seconds()))
	} else {
		attrs = append(attrs, "node_id", o.op.NodeID.String())
	}
	if o.outcome == "no_op" {
		attrs = append(attrs, "decision", o.reason)
	}
	if len(o.nodes) > 0 && len(o.nodes) <= 100 {
		ids := make([]string, len(o.nodes))
		for i, id := range o.nodes {
			ids[i] = id.String()
		}
		attrs = append(attrs, "node_ids", ids)
	}
	l.Info("operator command decided", attrs...)
}
