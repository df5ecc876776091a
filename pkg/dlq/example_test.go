package dlq_test

import (
	"fmt"
	"time"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

func ExampleTopicFor() {
	fmt.Println(dlq.TopicFor("onex.evt.platform.node-introspection.v1"))
	fmt.Println(dlq.TopicFor("onex.cmd.platform.node-registration-acked.v1"))
	fmt.Println(dlq.TopicForEventType("platform.node-heartbeat", "onex.evt.platform.node-heartbeat.v1"))
	fmt.Println(dlq.Router{Override: "my-dlq"}.TopicFor("onex.evt.platform.node-heartbeat.v1"))
	// Output:
	// onex.dlq.omnibase-infra.events.v1
	// onex.dlq.omnibase-infra.commands.v1
	// onex.dlq.omnibase-infra.platform.v1
	// my-dlq
}

func ExampleFormatTimestamp() {
	fmt.Println(dlq.FormatTimestamp(time.Date(2026, 3, 2, 14, 8, 0, 513330000, time.UTC)))
	// Output: 2026-03-02T14:08:00.513330+00:00
}
