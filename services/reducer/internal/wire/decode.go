package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/intern"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
)

// DecodeRecord decodes one reducer-input record (a pipeline.ReducerInput in
// either wire, chosen by its content_type header: protobuf as the
// orchestrator writes it, JSON when the header says so or is absent, as on
// records written before) into a processor input. kind is a short label for
// metrics ("introspection", "ack", "heartbeat", "tick", "operator",
// "unknown"). Every error is a content error naming what is wrong.
func DecodeRecord(headers []*sarama.RecordHeader, value []byte) (processor.Input, string, error) {
	ri, err := pipeline.DecodeReducerInput(headers, value)
	if err != nil {
		return processor.Input{}, "unknown", infraerr.ContentWrap("undecodable record", err)
	}
	return Decode(ri)
}

// Decode turns a reducer input into a processor input: the original value is
// decoded by its topic, and received_at becomes the decision's now (for a
// tick, the tick's own now, per the replay contract). A heartbeat the
// orchestrator decoded at ingress (ri.Heartbeat, protobuf wire) is taken as
// it is: ingress validated it, and decoding it again would only cost.
//
// The node messages (introspection, ack, heartbeat) are decoded tolerantly
// (envelope.DecodeTolerant, registration.Decode*Tolerant), as the
// orchestrator's ingress decoded them before republishing them here: a node
// newer than the fleet may send fields it does not know, which ingress has
// already accepted and counted, so they are not a reason to dead-letter the
// record here (nor counted again). Every other defect still is. An
// introspection's unknown payload members are kept (Introspection.Extras).
func Decode(ri pipeline.ReducerInput) (processor.Input, string, error) {
	if ri.Heartbeat != nil {
		return decodedHeartbeat(ri)
	}
	if len(ri.Value) == 0 {
		return processor.Input{}, "unknown", infraerr.Content("value", "missing")
	}
	now := ri.ReceivedAt.Time
	switch ri.Topic {
	case topics.NodeIntrospection:
		env, _, err := envelope.DecodeTolerant(ri.Value)
		if err != nil {
			return processor.Input{}, "introspection", infraerr.ContentWrap("introspection envelope", err)
		}
		ev, _, err := registration.DecodeIntrospectionEventTolerant(env.Payload)
		if err != nil {
			return processor.Input{}, "introspection", infraerr.ContentWrap("introspection payload", err)
		}
		if now.IsZero() {
			return processor.Input{}, "introspection", infraerr.Content("received_at", "missing")
		}
		in, err := introspection(env, ev)
		if err != nil {
			return processor.Input{}, "introspection", err
		}
		return processor.Input{Kind: processor.KindIntrospection, Now: now, Introspection: in}, "introspection", nil
	case topics.NodeRegistrationAcked:
		env, _, err := envelope.DecodeTolerant(ri.Value)
		if err != nil {
			return processor.Input{}, "ack", infraerr.ContentWrap("ack envelope", err)
		}
		a, _, err := registration.DecodeRegistrationAckedTolerant(env.Payload)
		if err != nil {
			return processor.Input{}, "ack", infraerr.ContentWrap("ack payload", err)
		}
		if now.IsZero() {
			return processor.Input{}, "ack", infraerr.Content("received_at", "missing")
		}
		return processor.Input{Kind: processor.KindAck, Now: now, Ack: decide.Ack{
			NodeID: a.NodeID, CommandID: a.CommandID, CorrelationID: a.CorrelationID, Timestamp: a.Timestamp.Time}}, "ack", nil
	case topics.NodeHeartbeat:
		env, _, err := envelope.DecodeTolerant(ri.Value)
		if err != nil {
			return processor.Input{}, "heartbeat", infraerr.ContentWrap("heartbeat envelope", err)
		}
		h, _, err := registration.DecodeHeartbeatEventTolerant(env.Payload)
		if err != nil {
			return processor.Input{}, "heartbeat", infraerr.ContentWrap("heartbeat payload", err)
		}
		if now.IsZero() {
			return processor.Input{}, "heartbeat", infraerr.Content("received_at", "missing")
		}
		var corr uuid.UUID
		if h.CorrelationID != nil {
			corr = *h.CorrelationID
		}
		return processor.Input{Kind: processor.KindHeartbeat, Now: now, Heartbeat: decide.Heartbeat{
			NodeID: h.NodeID, Timestamp: h.Timestamp.Time, CorrelationID: corr}}, "heartbeat", nil
	case topics.RuntimeTick:
		t, err := registration.DecodeTick(ri.Value)
		if err != nil {
			return processor.Input{}, "tick", infraerr.ContentWrap("runtime tick", err)
		}
		return processor.Input{Kind: processor.KindTick, Now: t.Now.Time, Tick: decide.Tick{
			TickID: t.TickID, CorrelationID: t.CorrelationID, Now: t.Now.Time}}, "tick", nil
	case topics.RegistrationAdmin:
		env, c, err := operator.Decode(ri.Value)
		if err != nil {
			return processor.Input{}, "operator", infraerr.ContentWrap("operator command", err)
		}
		if now.IsZero() {
			return processor.Input{}, "operator", infraerr.Content("received_at", "missing")
		}
		return processor.Input{Kind: processor.KindOperator, Now: now, Operator: operatorInput(env, c)}, "operator", nil
	}
	return processor.Input{}, "unknown", infraerr.Content("topic", fmt.Sprintf("%q is not a reducer input topic", ri.Topic))
}

// decodedHeartbeat is the processor input of a heartbeat decoded at
// ingress: the same input the JSON envelope's decoding gives.
func decodedHeartbeat(ri pipeline.ReducerInput) (processor.Input, string, error) {
	if ri.Topic != topics.NodeHeartbeat {
		return processor.Input{}, "unknown", infraerr.Content("topic", fmt.Sprintf("%q carries a heartbeat (want %s)", ri.Topic, topics.NodeHeartbeat))
	}
	if ri.ReceivedAt.IsZero() {
		return processor.Input{}, "heartbeat", infraerr.Content("received_at", "missing")
	}
	h := ri.Heartbeat
	var corr uuid.UUID
	if h.CorrelationID != nil {
		corr = *h.CorrelationID
	}
	return processor.Input{Kind: processor.KindHeartbeat, Now: ri.ReceivedAt.Time, Heartbeat: decide.Heartbeat{
		NodeID: h.NodeID, Timestamp: h.Timestamp, CorrelationID: corr}}, "heartbeat", nil
}

// operatorInput is an operator command as the decisions take it; the events
// it leads to carry the envelope's correlation id (the command id when the
// envelope has none).
func operatorInput(env *envelope.Envelope, c *operator.Command) decide.Operator {
	op := decide.Operator{CommandID: c.CommandID, CorrelationID: c.CommandID, Evict: c.Command == operator.Evict,
		OlderThan: c.OlderThan(), Reason: c.Reason, RequestedBy: c.RequestedBy, RequestedAt: c.RequestedAt.Time}
	if env.CorrelationID != nil {
		op.CorrelationID = *env.CorrelationID
	}
	if c.NodeID != nil {
		op.NodeID = *c.NodeID
	}
	if c.State != nil {
		op.State = decide.State(*c.State)
	}
	return op
}

func introspection(env *envelope.Envelope, ev *registration.IntrospectionEvent) (decide.Introspection, error) {
	// declared_capabilities is kept byte for byte as the node sent it: the
	// projection stores it verbatim (spec 2.2) and it may carry extra keys.
	var raw struct {
		Declared json.RawMessage `json:"declared_capabilities"`
	}
	if err := json.Unmarshal(env.Payload, &raw); err != nil {
		return decide.Introspection{}, infraerr.ContentWrap("introspection payload", err)
	}
	caps := raw.Declared
	if len(caps) == 0 || string(caps) == "null" {
		caps = json.RawMessage(`{}`)
	}
	in := decide.Introspection{
		// The values nodes share are interned: the state keeps them.
		NodeID: ev.NodeID, NodeType: intern.String(string(ev.NodeType)), NodeName: ev.NodeName,
		NodeVersion: intern.String(ev.NodeVersion.String()), Capabilities: intern.Bytes(compact(caps)), Endpoints: ev.Endpoints,
		Description: ev.Metadata.Description, CorrelationID: ev.CorrelationID, HandlerCorrelationID: ev.CorrelationID,
		Extras: extrasObject(ev.Extras), Reason: string(ev.Reason), Timestamp: ev.Timestamp.Time,
	}
	if env.CorrelationID != nil {
		in.HandlerCorrelationID = *env.CorrelationID
	}
	if m := ev.DeclaredCapabilities.MCP; m != nil {
		in.MCPExpose, in.MCPToolName = m.Expose, m.ToolName
	}
	in.Declared = intern.Declared(decide.NewDeclared(declaredInput(ev)))
	return in, nil
}

// declaredInput is what an introspection declares of its contract
// (contract_capabilities) and topics (event_bus).
func declaredInput(ev *registration.IntrospectionEvent) decide.DeclaredInput {
	var d decide.DeclaredInput
	if c := ev.ContractCapabilities; c != nil {
		d.HasContract = true
		d.ContractType, d.ContractVersion = c.ContractType, c.ContractVersion.String()
		d.IntentTypes, d.Protocols, d.CapabilityTags = c.IntentTypes, c.Protocols, c.CapabilityTags
	}
	if b := ev.EventBus; b != nil {
		for _, t := range b.SubscribeTopics {
			d.SubscribeTopics = append(d.SubscribeTopics, t.Topic)
		}
		for _, t := range b.PublishTopics {
			d.PublishTopics = append(d.PublishTopics, t.Topic)
		}
	}
	return d
}

// extrasObject writes an introspection's unknown members (path → value,
// registration.IntrospectionEvent.Extras) as one compact JSON object, in
// their order: the keys as encoding/json writes strings, the values
// compacted. It returns nil when there are none. Nodes of one release
// usually send the same ones, so the object is interned.
//
// The object goes into a Kafka header (the snapshot's reducer state, which
// Python consumers decode as UTF-8) and a PostgreSQL jsonb column, which
// refuses U+0000: invalid UTF-8 and \u0000 escapes become U+FFFD, as
// encoding/json does for invalid UTF-8, so a node's odd field can never
// make its registration fail downstream.
func extrasObject(ms pyjson.Members) json.RawMessage {
	if len(ms) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(m.Key)
		if err != nil {
			return nil // a string always marshals
		}
		buf.Write(k)
		buf.WriteByte(':')
		if err := json.Compact(&buf, m.Value); err != nil {
			return nil // the decoder validated the payload: cannot happen
		}
	}
	buf.WriteByte('}')
	b := buf.Bytes()
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\ufffd"))
	}
	return intern.Bytes(replaceNUL(b))
}

// replaceNUL replaces every \u0000 escape of the valid JSON b with \ufffd,
// in place. Escapes only occur in strings, and the character after a
// backslash is never the start of one.
func replaceNUL(b []byte) []byte {
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) && string(b[i+2:i+6]) == "0000" {
			copy(b[i+2:i+6], "fffd")
		}
		i++
	}
	return b
}

// compact drops the insignificant whitespace of Python's json.dumps so the
// state and snapshots stay small; invalid JSON is returned unchanged (the
// payload decoder has already validated it).
func compact(b json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// Decision encodes every event and intent of a decision, in order: events
// first (their index in the decision makes their deterministic id), then
// intents, then the change of the node's topic catalog entry. now stamps the intent envelopes.
func Decision(d decide.Decision, now time.Time) ([]Record, error) {
	var out []Record
	for i, e := range d.Events {
		r, err := Event(e, i)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	for _, in := range d.Intents {
		r, err := Intent(in, d.State, now)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if d.Topics != nil {
		r, err := Topics(d.Topics)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
