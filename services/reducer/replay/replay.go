// Package replay runs a scenario through the reducer's own decision code with
// no cluster: it reads reducer inputs as lines (JSON, or protojson for a
// heartbeat decoded at ingress: pipeline.ParseReducerInputLine), decides
// them against one in-memory partition starting from empty state, and
// writes every event and intent the reducer would publish (an intent in its
// JSON form). It backs
// `onexctl reducer replay`.
package replay

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// Output is one line of replay output for a published record.
type Output struct {
	Kind       string          `json:"kind"`
	IntentType string          `json:"intent_type,omitempty"`
	Topic      string          `json:"topic"`
	Key        string          `json:"key"`
	Value      json.RawMessage `json:"value"`
}

// Run reads input lines from r — each {"topic": T, "received_at": RFC3339,
// "value": V}, V being the record value exactly as on the wire, or a
// heartbeat decoded at ingress as the topic's protobuf carries it, in
// protojson (pipeline.ReducerInputLine) — and writes
// to w one line per event or intent, in publication order, then a last line
// {"final_states": {"<node_id>": "<state>"}}. A line it cannot use is
// reported on errw with its line number and skipped; Run returns how many
// were skipped. Snapshots are not written: they restate the final states.
//
// All nodes share one partition, so mass-expiry protection sees the whole
// scenario's fleet at once.
func Run(r io.Reader, w, errw io.Writer, params decide.Params) (skipped int, err error) {
	proc := processor.New(params, state.NewPartition(0))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		if len(trimSpace(raw)) == 0 {
			continue
		}
		ri, err := pipeline.ParseReducerInputLine(raw)
		if err != nil {
			fmt.Fprintf(errw, "line %d: %s\n", line, infraerr.SanitizeString(err.Error()))
			skipped++
			continue
		}
		in, _, err := wire.Decode(ri)
		if err != nil {
			fmt.Fprintf(errw, "line %d: %s\n", line, infraerr.SanitizeString(err.Error()))
			skipped++
			continue
		}
		res := proc.Apply(in)
		for _, d := range res.Decisions {
			recs, err := wire.Decision(d, in.Now)
			if err != nil {
				return skipped, fmt.Errorf("line %d: %w", line, err)
			}
			for _, rec := range recs {
				value, err := outputValue(rec)
				if err != nil {
					return skipped, fmt.Errorf("line %d: %w", line, err)
				}
				if err := enc.Encode(Output{Kind: rec.Kind, IntentType: rec.IntentType, Topic: rec.Topic, Key: rec.Key, Value: value}); err != nil {
					return skipped, err
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return skipped, fmt.Errorf("read input: %w", err)
	}
	final := map[string]string{}
	var ids []string
	proc.Partition.Each(func(n *decide.NodeState) {
		final[n.NodeID.String()] = string(n.State)
		ids = append(ids, n.NodeID.String())
	})
	sort.Strings(ids)
	return skipped, enc.Encode(struct {
		FinalStates map[string]string `json:"final_states"`
	}{final})
}

// outputValue is a record's value as a line shows it: an intent, which the
// reducer writes in protobuf, in its JSON form (the envelope around a
// pipeline.Intent, pipeline.MarshalIntentJSON), so the output stays JSON
// lines; every other record as it is.
func outputValue(rec wire.Record) (json.RawMessage, error) {
	if rec.Kind != "intent" || pipeline.IsJSON(rec.ContentType) {
		return rec.Value, nil
	}
	r, err := pipeline.UnmarshalIntent(rec.Value)
	if err != nil {
		return nil, err
	}
	return pipeline.MarshalIntentJSON(r)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
