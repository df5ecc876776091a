package pipeline

import (
	"mime"
	"strings"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// HeaderContentType is the header that says how a record's value is
// encoded. It is the header the Python runtime writes on every record
// (spec 1.5, always application/json there), so the fleet's internal
// records use the same name rather than one of their own: a tool that
// reads one topic reads them all.
//
// The Python-facing topics stay JSON. An internal topic may carry
// protobuf (proto/onex/fleet/v1), and its readers decide by this header,
// never by sniffing the bytes: docs/architecture.md, "Two wires".
const HeaderContentType = envelope.HeaderKeyContentType

// The media types of HeaderContentType. A protobuf value also names its
// message (ProtobufContentType), so a reader can refuse a record of another
// message instead of misreading its fields.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/x-protobuf"
)

// protobufMessageParam is the media type parameter naming the message, as
// the Confluent and Buf tools write it.
const protobufMessageParam = "messageType"

// ProtobufContentType is the content type of a record whose value is the
// protobuf message of the given full name:
// "application/x-protobuf; messageType=onex.fleet.v1.ReducerInput".
func ProtobufContentType(messageType string) string {
	return ContentTypeProtobuf + "; " + protobufMessageParam + "=" + messageType
}

// ContentType returns the content type of a consumed record: the value of
// the last HeaderContentType header (a header added later wins, as in
// envelope.HeadersFromRecords), "" when it has none.
func ContentType(headers []*sarama.RecordHeader) string {
	var v []byte
	found := false
	for _, h := range headers {
		if h != nil && string(h.Key) == HeaderContentType {
			v, found = h.Value, true
		}
	}
	if !found {
		return ""
	}
	return string(v)
}

// SetContentType sets the content type of a record to be produced: it
// replaces the first HeaderContentType header in place (keeping the
// headers' order) and drops any later one, or appends the header.
func SetContentType(headers []sarama.RecordHeader, contentType string) []sarama.RecordHeader {
	out := headers[:0:0]
	set := false
	for _, h := range headers {
		if string(h.Key) != HeaderContentType {
			out = append(out, h)
			continue
		}
		if !set {
			out = append(out, sarama.RecordHeader{Key: h.Key, Value: []byte(contentType)})
			set = true
		}
	}
	if !set {
		out = append(out, sarama.RecordHeader{Key: []byte(HeaderContentType), Value: []byte(contentType)})
	}
	return out
}

// IsJSON reports whether a content type is JSON: application/json with any
// parameters (charset), or none at all, which is what every record written
// before the fleet used protobuf may lack.
func IsJSON(contentType string) bool {
	if strings.TrimSpace(contentType) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == ContentTypeJSON
}

// ProtobufMessageType returns the message a protobuf content type names,
// and ok=false for any other content type or one that names none.
// application/protobuf (the IANA name) is read like application/x-protobuf.
func ProtobufMessageType(contentType string) (string, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != ContentTypeProtobuf && mt != "application/protobuf") {
		return "", false
	}
	// mime lower-cases parameter names.
	name := params[strings.ToLower(protobufMessageParam)]
	return name, name != ""
}
