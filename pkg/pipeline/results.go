package pipeline

import "github.com/IBM/sarama"

// HeaderResults is the header of a routed intent record that tells the
// effect which results the orchestrator wants for it. With the value
// ResultsFailures the effect publishes a result only when the intent
// failed: the orchestrator routes updates, deregistrations and refreshes
// untracked and only logs and counts their failures, so a success result
// would be a record written, consumed and decoded for nothing (a heartbeat's
// projection update is most of the fleet's traffic). Without the header an
// effect answers every intent, so intents routed by an orchestrator that
// predates the header keep getting every result.
const HeaderResults = "x-onex-results"

// ResultsFailures is the value of HeaderResults that asks for failed results
// only.
const ResultsFailures = "failures"

// FailuresOnlyHeader returns the header an intent record routed untracked
// carries.
func FailuresOnlyHeader() sarama.RecordHeader {
	return sarama.RecordHeader{Key: []byte(HeaderResults), Value: []byte(ResultsFailures)}
}

// FailuresOnly reports whether a consumed intent record asks for failed
// results only (the last HeaderResults header, if repeated, decides). A
// value other than ResultsFailures asks for every result, so a value added
// later is not mistaken for this one.
func FailuresOnly(headers []*sarama.RecordHeader) bool {
	var v []byte
	for _, h := range headers {
		if h != nil && string(h.Key) == HeaderResults {
			v = h.Value
		}
	}
	return string(v) == ResultsFailures
}
