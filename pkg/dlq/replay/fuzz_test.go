package replay

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

// FuzzNewEntry feeds arbitrary record values and message_id headers to the
// decoder of records read from a DLQ topic, and checks that whatever
// decodes can be replayed and quarantined faithfully: the replay carries the
// stored original value byte for byte, the quarantine body is JSON whose
// original_payload decodes to the same record.
func FuzzNewEntry(f *testing.F) {
	good, _ := dlq.Build(&sarama.ConsumerMessage{Topic: "onex.evt.platform.node-heartbeat.v1", Key: []byte("k"), Value: []byte(`{"a": "\u00e9"}`)},
		dlq.Failure{Err: errTest{}}, "", time.Unix(0, 0))
	gv, _ := good.Value.Encode()
	f.Add(gv, []byte(uuid.NewString()))
	f.Add([]byte(`{"original_topic": "t", "original_message": {"key": null, "value": "v", "offset": "12", "partition": 1}, "retry_count": "3"}`), []byte("x"))
	f.Add([]byte(`{"quarantine_correlation_id": "q", "original_payload": {"original_topic": "t"}}`), []byte(""))
	f.Add([]byte(`{"original_topic": "t", "original_message": {"value": null}, "retry_count": null}`), []byte(nil))
	f.Add([]byte(`[]`), []byte("00000000-0000-0000-0000-000000000000"))
	f.Fuzz(func(t *testing.T, value, messageID []byte) {
		m := &sarama.ConsumerMessage{Topic: "onex.dlq.omnibase-infra.events.v1", Partition: 1, Offset: 9, Value: value,
			Headers: []*sarama.RecordHeader{{Key: []byte(dlq.HeaderMessageID), Value: messageID}}}
		e := NewEntry(m)
		set := 0
		for _, b := range []bool{e.Record != nil, e.Quarantined != nil, e.DecodeErr != nil} {
			if b {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("record %v quarantined %v err %v: exactly one must be set", e.Record, e.Quarantined, e.DecodeErr)
		}
		if e.ID() == uuid.Nil || e.ID() != NewEntry(m).ID() {
			t.Fatal("ID is nil or not deterministic")
		}
		_ = Decide(e, Filter{}, DefaultMaxReplayCount)
		Stats{}.Add(e)
		if e.Record == nil {
			return
		}
		if pm, err := ReplayMessage(e, uuid.Nil, time.Unix(0, 0)); err == nil {
			v, _ := pm.Value.Encode()
			if string(v) != e.Record.OriginalMessage.Value || pm.Topic != e.Record.OriginalTopic {
				t.Fatalf("replay changed the original: %q on %s", v, pm.Topic)
			}
		}
		pm, err := QuarantineMessage(e, "reason", uuid.Nil, "q", time.Unix(0, 0))
		if err != nil {
			t.Fatalf("quarantine of a decoded record: %v", err)
		}
		v, _ := pm.Value.Encode()
		if !json.Valid(v) {
			t.Fatalf("quarantine body is not JSON: %s", v)
		}
		q, err := DecodeQuarantined(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := dlq.Decode(q.OriginalPayload)
		if err != nil {
			t.Fatalf("original_payload %s: %v", q.OriginalPayload, err)
		}
		if back.OriginalTopic != e.Record.OriginalTopic || back.OriginalMessage.Value != e.Record.OriginalMessage.Value || back.RetryCount != e.Record.RetryCount {
			t.Fatalf("original_payload decodes to %+v, want %+v", back, e.Record)
		}
	})
}

type errTest struct{}

func (errTest) Error() string { return "test failure" }
