package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/omninode/onex-fleet/pkg/envelope"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// A reducer input as a line of text, for people and for `onexctl reducer
// replay`: an input that carries a record value is the JSON form
// {"topic", "received_at", "value"} with the value byte for byte (what the
// topic carried before protobuf, and what scenario files hold); a heartbeat
// decoded at ingress has no JSON form and is written as protojson
// (fleetv1.ReducerInput, proto field names). ParseReducerInputLine reads
// both, so records printed from the topic can be replayed.

// ReducerInputLine renders a reducer input as one line (no newline).
func ReducerInputLine(ri ReducerInput) ([]byte, error) {
	if ri.Heartbeat == nil {
		return jsonLine(ri)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ri.Proto())
	if err != nil {
		return nil, fmt.Errorf("reducer input: %w", err)
	}
	return b, nil
}

// jsonLine writes the JSON form by hand: encoding/json would compact and
// re-escape the embedded value, which must stay byte for byte.
func jsonLine(ri ReducerInput) ([]byte, error) {
	if !json.Valid(ri.Value) {
		return nil, errors.New("reducer input: the record value is not one JSON value")
	}
	t, err := json.Marshal(ri.Topic)
	if err != nil {
		return nil, fmt.Errorf("reducer input: %w", err)
	}
	ts, err := json.Marshal(envelope.FormatTime(ri.ReceivedAt.Time))
	if err != nil {
		return nil, fmt.Errorf("reducer input: %w", err)
	}
	out := make([]byte, 0, len(ri.Value)+len(t)+len(ts)+40)
	out = append(out, `{"topic":`...)
	out = append(out, t...)
	out = append(out, `,"received_at":`...)
	out = append(out, ts...)
	out = append(out, `,"value":`...)
	out = append(out, ri.Value...)
	return append(out, '}'), nil
}

// FormatReducerInput renders a consumed reducer input record for people
// (ReducerInputLine), or says why it cannot: tools and test failures print
// records with it.
func FormatReducerInput(headers []*sarama.RecordHeader, value []byte) string {
	ri, err := DecodeReducerInput(headers, value)
	if err != nil {
		return fmt.Sprintf("<%d bytes: %v>", len(value), err)
	}
	line, err := ReducerInputLine(ri)
	if err != nil {
		return fmt.Sprintf("<%d bytes: %v>", len(value), err)
	}
	return string(line)
}

// ParseReducerInputLine reads one line of either form. A JSON object with a
// "value" member is the JSON form; anything else is read as protojson.
func ParseReducerInputLine(line []byte) (ReducerInput, error) {
	var probe struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return ReducerInput{}, fmt.Errorf("reducer input is not valid JSON: %w", err)
	}
	if len(probe.Value) > 0 {
		var ri ReducerInput
		if err := json.Unmarshal(line, &ri); err != nil {
			return ReducerInput{}, fmt.Errorf("reducer input: %w", err)
		}
		return ri, nil
	}
	var m fleetv1.ReducerInput
	if err := protojson.Unmarshal(line, &m); err != nil {
		return ReducerInput{}, fmt.Errorf("reducer input: neither {\"topic\", \"received_at\", \"value\"} nor a %s in protojson: %w",
			ReducerInputMessageType, err)
	}
	return ReducerInputFromProto(&m)
}
