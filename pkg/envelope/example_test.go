package envelope_test

import (
	"fmt"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

func ExampleDecode() {
	value := []byte(`{"payload": {"node_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"}, ` +
		`"correlation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d", ` +
		`"envelope_timestamp": "2026-03-02T14:05:07.412377Z"}`)

	env, err := envelope.Decode(value)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(env.CorrelationID, env.EnvelopeTimestamp, env.Priority, env.EnvelopeVersion)
	fmt.Println(string(env.Payload))

	_, err = envelope.Decode([]byte(`{"payload": {}, "correlation_id": "abc"}`))
	fmt.Println(err)
	// Output:
	// b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d 2026-03-02T14:05:07.412377Z 5 2.3.0
	// {"node_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"}
	// envelope: field "correlation_id": not a UUID
}

func ExampleNew() {
	env, err := envelope.New(map[string]string{"node_id": "n1"},
		envelope.WithEventType(envelope.EventTypeFromTopic("onex.evt.platform.node-became-active.v1")))
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := env.Encode()
	fmt.Println(len(b) > 0, *env.EventType)
	// Output: true platform.node-became-active
}
