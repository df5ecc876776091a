package load

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// A heartbeat record holds, besides the node's fixed fields, four fresh ids
// (the body's correlation id, the envelope id, the header correlation and
// message ids, in the order node.Encoder draws them) and its time (in the
// body as pydantic writes it, in the timestamp header as isoformat does).
// Encoding one with node.Encoder costs about 130 µs and 600 allocations;
// the sender must offer tens of thousands a second on the same two cores as
// the fleet, so it encodes one template per node kind and version and fills
// in the node id, ids and time. TestTemplateMatchesEncoder checks that the
// result is byte for byte what node.Encoder writes.
type template struct {
	value   []segment
	headers []headerTemplate
	topic   string
}

type headerTemplate struct {
	key   []byte
	value []segment
}

// slot is what a segment is followed by.
type slot int

const (
	slotNone slot = iota
	slotNode
	slotID0 // the four fresh ids, in Encoder order
	slotID1
	slotID2
	slotID3
	slotBodyTime
	slotHeaderTime
)

type segment struct {
	literal []byte
	then    slot
}

// Placeholders: values that cannot occur in a record by chance.
var (
	refTime     = time.Date(2001, 2, 3, 4, 5, 6, 789012000, time.UTC)
	refNode     = uuid.MustParse("0d0d0d0d-0d0d-4d0d-8d0d-0d0d0d0d0d0d")
	refIDs      = [4]uuid.UUID{uuid.MustParse("1e1e1e1e-1e1e-4e1e-8e1e-1e1e1e1e1e1e"), uuid.MustParse("2f2f2f2f-2f2f-4f2f-8f2f-2f2f2f2f2f2f"), uuid.MustParse("3a3a3a3a-3a3a-4a3a-8a3a-3a3a3a3a3a3a"), uuid.MustParse("4b4b4b4b-4b4b-4b4b-8b4b-4b4b4b4b4b4b")}
	refUptime   = time.Hour
	refBodyTime = envelope.FormatTime(refTime)
	refHdrTime  = envelope.FormatHeaderTime(refTime)
)

// newTemplate encodes the heartbeat of a node like id (id's node id is not
// used) with the placeholders.
func newTemplate(id node.Identity, source string, ns topicns.Namespace) (*template, error) {
	id.NodeID = refNode
	next := 0
	enc := &node.Encoder{Source: source, Now: func() time.Time { return refTime },
		NewID: func() uuid.UUID { u := refIDs[next%4]; next++; return u }}
	rec, err := enc.Heartbeat(&id, refUptime, node.Load{})
	if err != nil {
		return nil, err
	}
	if next != 4 {
		return nil, fmt.Errorf("heartbeat template: the encoder drew %d ids, want 4", next)
	}
	t := &template{topic: ns.Physical(rec.Topic), value: split(rec.Value)}
	for _, h := range rec.Headers {
		t.headers = append(t.headers, headerTemplate{key: h.Key, value: split(h.Value)})
	}
	return t, nil
}

// split cuts b at every placeholder.
func split(b []byte) []segment {
	marks := []struct {
		s    []byte
		slot slot
	}{
		{[]byte(refNode.String()), slotNode},
		{[]byte(refIDs[0].String()), slotID0}, {[]byte(refIDs[1].String()), slotID1},
		{[]byte(refIDs[2].String()), slotID2}, {[]byte(refIDs[3].String()), slotID3},
		{[]byte(refBodyTime), slotBodyTime}, {[]byte(refHdrTime), slotHeaderTime},
	}
	var out []segment
	for len(b) > 0 {
		at, which := -1, -1
		for i, m := range marks {
			if j := bytes.Index(b, m.s); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			out = append(out, segment{literal: b, then: slotNone})
			break
		}
		out = append(out, segment{literal: b[:at], then: marks[which].slot})
		b = b[at+len(marks[which].s):]
	}
	return out
}

// fill assembles a record value or header value.
func fill(dst []byte, segs []segment, node []byte, ids *[4][36]byte, body, hdr []byte) []byte {
	for _, s := range segs {
		dst = append(dst, s.literal...)
		switch s.then {
		case slotNode:
			dst = append(dst, node...)
		case slotID0, slotID1, slotID2, slotID3:
			dst = append(dst, ids[s.then-slotID0][:]...)
		case slotBodyTime:
			dst = append(dst, body...)
		case slotHeaderTime:
			dst = append(dst, hdr...)
		}
	}
	return dst
}

// record builds the heartbeat of nodeID at now with the four given ids.
func (t *template) record(nodeID uuid.UUID, now time.Time, ids [4]uuid.UUID) *sarama.ProducerMessage {
	var idText [4][36]byte
	for i, u := range ids {
		copy(idText[i][:], u.String())
	}
	key := []byte(nodeID.String())
	body, hdr := []byte(envelope.FormatTime(now)), []byte(envelope.FormatHeaderTime(now))
	m := &sarama.ProducerMessage{Topic: t.topic, Key: sarama.ByteEncoder(key),
		Value: sarama.ByteEncoder(fill(make([]byte, 0, 1024), t.value, key, &idText, body, hdr))}
	m.Headers = make([]sarama.RecordHeader, len(t.headers))
	for i, h := range t.headers {
		m.Headers[i] = sarama.RecordHeader{Key: h.key, Value: fill(nil, h.value, key, &idText, body, hdr)}
	}
	return m
}

// randomIDs draws four version-4 UUIDs from a fast, non-cryptographic
// source: they only need to differ.
func randomIDs(r *rand.Rand) [4]uuid.UUID {
	var out [4]uuid.UUID
	for i := range out {
		hi, lo := r.Uint64(), r.Uint64()
		for j := 0; j < 8; j++ {
			out[i][j] = byte(hi >> (56 - 8*j))
			out[i][8+j] = byte(lo >> (56 - 8*j))
		}
		out[i][6] = out[i][6]&0x0f | 0x40
		out[i][8] = out[i][8]&0x3f | 0x80
	}
	return out
}
