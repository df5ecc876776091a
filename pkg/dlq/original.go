package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	// The fleet's messages must be in protoregistry.GlobalTypes for a
	// protobuf original to be written, and replayed, as protojson.
	_ "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// A DLQ record holds the original value as text (original_message.value is a
// string in the Python model, and people read it). A JSON original is that
// text already; a protobuf original (docs/architecture.md, "Two wires") is
// not, and as UTF-8 text with replacement characters it would be lost. So a
// protobuf original is stored as its protojson when that turns back into the
// very same bytes, else as base64, and two headers of the DLQ record (the
// body has no room for them: the Python model forbids unknown fields) say
// how, so the replay can restore the bytes and their content_type.
const (
	// HeaderOriginalContentType is the original record's content_type
	// header, on the DLQ record of a protobuf original.
	HeaderOriginalContentType = "x-onex-dlq-original-content-type"
	// HeaderValueEncoding says how original_message.value holds the
	// original bytes: EncodingProtoJSON or EncodingBase64. Without it the
	// value is the original as UTF-8 text (any JSON original, and every
	// record of the Python writer).
	HeaderValueEncoding = "x-onex-dlq-value-encoding"

	// EncodingProtoJSON is the protojson of the message the original
	// content type names (proto field names, compact).
	EncodingProtoJSON = "protojson"
	// EncodingBase64 is the original bytes in standard base64 with padding.
	EncodingBase64 = "base64"
)

// ErrUnknownMessageType is returned (wrapped) by RestoreValue for a protojson
// original whose message this build does not know: a build that knows it
// can replay the record.
var ErrUnknownMessageType = errors.New("protobuf message type unknown to this build")

// valueForm is how a DLQ record holds its original value: encoding "" is
// plain text.
type valueForm struct {
	encoding    string
	contentType string
}

// encodeValue returns the text original_message.value holds for msg's value
// and the form it is in.
func encodeValue(msg *sarama.ConsumerMessage) (string, valueForm) {
	ct := pipeline.ContentType(msg.Headers)
	if !isProtobuf(ct) {
		return utf8Replace(msg.Value), valueForm{}
	}
	if name, ok := pipeline.ProtobufMessageType(ct); ok {
		if s, err := protoJSON(name, msg.Value); err == nil {
			return s, valueForm{EncodingProtoJSON, ct}
		}
	}
	// Corrupt bytes, fields this build does not know, a message it does not
	// know: the bytes are kept as they came, for whoever can read them.
	return base64.StdEncoding.EncodeToString(msg.Value), valueForm{EncodingBase64, ct}
}

// isProtobuf reports whether a content type says protobuf, whether or not it
// names the message.
func isProtobuf(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == pipeline.ContentTypeProtobuf || mt == "application/protobuf")
}

// protoJSON returns the compact protojson of b as the message name, and an
// error unless RestoreValue turns that text back into b byte for byte:
// protojson drops unknown fields, and the producer's field order need not be
// the deterministic one.
func protoJSON(name string, b []byte) (string, error) {
	m, err := newMessage(name)
	if err != nil {
		return "", err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return "", fmt.Errorf("dlq: not a %s: %w", name, err)
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("dlq: %s as protojson: %w", name, err)
	}
	// protojson varies its whitespace on purpose; compacted, the record is
	// the same for the same original.
	var buf bytes.Buffer
	if err := json.Compact(&buf, j); err != nil {
		return "", fmt.Errorf("dlq: %s as protojson: %w", name, err)
	}
	back, err := fromProtoJSON(name, buf.Bytes())
	if err != nil {
		return "", err
	}
	if !bytes.Equal(back, b) {
		return "", fmt.Errorf("dlq: %s does not survive protojson byte for byte", name)
	}
	return buf.String(), nil
}

func newMessage(name string) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("dlq: %s: %w", name, ErrUnknownMessageType)
	}
	return mt.New().Interface(), nil
}

// fromProtoJSON is the protobuf encoding of the protojson text j of the
// message name, deterministic so that the same text gives the same bytes.
func fromProtoJSON(name string, j []byte) ([]byte, error) {
	m, err := newMessage(name)
	if err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(j, m); err != nil {
		return nil, fmt.Errorf("dlq: original value is not a %s in protojson: %w", name, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("dlq: encode %s: %w", name, err)
	}
	return b, nil
}

// RestoreValue returns the original record value that a DLQ record holds as
// stored (original_message.value), and the content_type to put back on it
// ("" for none: the original is text and had it, if at all, as JSON), reading
// the DLQ record's headers through header (HeaderValueEncoding,
// HeaderOriginalContentType). Without HeaderValueEncoding the value is
// stored's bytes. It fails, rather than return other bytes, for an encoding
// it does not know, base64 that does not decode, and protojson of a message
// this build does not know (ErrUnknownMessageType) or that does not parse.
func RestoreValue(stored string, header func(string) (string, bool)) ([]byte, string, error) {
	enc, ok := header(HeaderValueEncoding)
	if !ok {
		return []byte(stored), "", nil
	}
	ct, _ := header(HeaderOriginalContentType)
	switch enc {
	case EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(stored)
		if err != nil {
			return nil, "", fmt.Errorf("dlq: original value is not base64: %w", err)
		}
		return b, ct, nil
	case EncodingProtoJSON:
		name, ok := pipeline.ProtobufMessageType(ct)
		if !ok {
			return nil, "", fmt.Errorf("dlq: protojson original value without a protobuf message type (%s %q)", HeaderOriginalContentType, ct)
		}
		b, err := fromProtoJSON(name, []byte(stored))
		if err != nil {
			return nil, "", err
		}
		return b, ct, nil
	default:
		return nil, "", fmt.Errorf("dlq: unknown original value encoding %q (%s)", enc, HeaderValueEncoding)
	}
}
