package wire

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// A reducer input is written in protobuf by default and in the JSON form
// an older reducer reads with ONEX_INTERNAL_WIRE=json; either decodes to
// the same input.
func TestInputMessageWire(t *testing.T) {
	value := []byte(`{"event_type":"onex.evt.platform.runtime-tick.v1","payload":{"n":1}}`)
	ri := pipeline.ReducerInput{Topic: "onex.evt.platform.runtime-tick.v1", Value: value,
		ReceivedAt: pipeline.T(time.Date(2026, 12, 7, 12, 0, 0, 123000, time.UTC))}
	for _, tc := range []struct {
		wire   pipeline.Wire
		wantCT string
	}{
		{pipeline.WireProtobuf, pipeline.ReducerInputContentType},
		{pipeline.WireJSON, pipeline.ContentTypeJSON},
	} {
		t.Run(tc.wire.String(), func(t *testing.T) {
			pipeline.SetWrites(tc.wire)
			t.Cleanup(func() { pipeline.SetWrites(pipeline.WireProtobuf) })
			corr := uuid.New()
			m := InputMessage("reducer-input", "key-1", ri, "test", corr)
			hs := make([]*sarama.RecordHeader, len(m.Headers))
			for i := range m.Headers {
				hs[i] = &m.Headers[i]
			}
			if ct := pipeline.ContentType(hs); ct != tc.wantCT {
				t.Fatalf("content type %q, want %q", ct, tc.wantCT)
			}
			v, _ := m.Value.Encode()
			got, err := pipeline.DecodeReducerInput(hs, v)
			if err != nil {
				t.Fatal(err)
			}
			if got.Topic != ri.Topic || string(got.Value) != string(value) || !got.ReceivedAt.Equal(ri.ReceivedAt.Time) {
				t.Fatalf("decoded %+v, want %+v", got, ri)
			}
		})
	}
}
