package run

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/observe"
	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/bench/internal/stats"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// A registration's records on the way, each with the time its producer
// created it (Kafka's record timestamp: every producer runs on this
// machine, on one clock). Between two of them is one hop of the fleet.
const (
	recIntrospection   = "introspection"
	recInputIntro      = "reducer input (introspection)"
	recAccepted        = "accepted event"
	recAck             = "ack"
	recInputAck        = "reducer input (ack)"
	recBecameActive    = "became-active event"
	recUpdateIntent    = "update intent (reducer)"
	recUpdateRouted    = "update intent routed"
	recRegisterIntent  = "consul.register intent (reducer)"
	recRegisterRouted  = "consul.register routed"
	recConsulResult    = "consul result"
	obsNodeAccepted    = "node sees accepted"
	obsPGActive        = "row active (poll)"
	obsNodeBecameActiv = "node sees became-active"
)

// hopTopics are the topics a registration crosses.
var hopTopics = []string{
	topics.NodeIntrospection, topics.ReducerInput, topics.NodeRegistrationAccepted, topics.NodeRegistrationAcked,
	topics.NodeBecameActive, topics.RegistrationIntents, topics.PostgresIntents, topics.ConsulIntents, topics.EffectResults,
}

// classify names a record of topic, or "" for one the hops do not use.
// headers are the record's (an intent's or a result's content_type says
// its form).
func classify(topic string, headers []*sarama.RecordHeader, v []byte) string {
	switch topic {
	case topics.NodeIntrospection:
		return recIntrospection
	case topics.NodeRegistrationAccepted:
		return recAccepted
	case topics.NodeRegistrationAcked:
		return recAck
	case topics.NodeBecameActive:
		return recBecameActive
	case topics.ReducerInput:
		switch {
		case bytes.Contains(v[:min(len(v), 80)], []byte(topics.NodeIntrospection)):
			return recInputIntro
		case bytes.Contains(v[:min(len(v), 80)], []byte(topics.NodeRegistrationAcked)):
			return recInputAck
		}
	case topics.RegistrationIntents, topics.PostgresIntents, topics.ConsulIntents:
		routed := topic != topics.RegistrationIntents
		var update, register bool
		if pipeline.IsJSON(pipeline.ContentType(headers)) {
			update = bytes.Contains(v, []byte(`"`+pipeline.PostgresUpdate+`"`)) && activeUpdate(v)
			register = !update && bytes.Contains(v, []byte(`"`+pipeline.ConsulRegister+`"`))
		} else if r, err := pipeline.DecodeIntentRecord(headers, v); err == nil {
			// The reducer's protobuf: an update carries its state as a field.
			in := r.Intent
			update = in.IntentType == pipeline.PostgresUpdate && in.Update != nil && in.Update.Updates.CurrentState == "active"
			register = in.IntentType == pipeline.ConsulRegister
		}
		switch {
		case update && routed:
			return recUpdateRouted
		case update:
			return recUpdateIntent
		case register && routed:
			return recRegisterRouted
		case register:
			return recRegisterIntent
		}
	case topics.EffectResults:
		if pipeline.IsJSON(pipeline.ContentType(headers)) {
			if bytes.Contains(v, []byte(`"`+pipeline.ConsulRegister+`"`)) {
				return recConsulResult
			}
		} else if r, err := pipeline.DecodeEffectResultRecord(headers, v); err == nil && r.Result.IntentType == pipeline.ConsulRegister {
			return recConsulResult
		}
	}
	return ""
}

// activeUpdate reports an update intent in the JSON form that makes the row
// active (the ack's): envelopes are written the Python way, with a space
// after colons.
func activeUpdate(v []byte) bool {
	return bytes.Contains(v, []byte(`"current_state": "active"`)) || bytes.Contains(v, []byte(`"current_state":"active"`))
}

// offsets are a position on every partition of hopTopics (by canonical
// name; the topics read are on the run's namespace).
type offsets map[string]map[int32]int64

func hopOffsets(client sarama.Client, ns topicns.Namespace) (offsets, error) {
	out := offsets{}
	for _, t := range hopTopics {
		parts, err := client.Partitions(ns.Physical(t))
		if err != nil {
			return nil, err
		}
		out[t] = map[int32]int64{}
		for _, p := range parts {
			if out[t][p], err = client.GetOffset(ns.Physical(t), p, sarama.OffsetNewest); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// hopTimes reads the records between from and to and returns, per node of
// ours, the first creation time of each kind of record.
func hopTimes(ctx context.Context, brokers []string, ns topicns.Namespace, from, to offsets, ours map[uuid.UUID]bool) (map[uuid.UUID]map[string]time.Time, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-hops"})
	if err != nil {
		return nil, err
	}
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := map[uuid.UUID]map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for t, parts := range from {
		for p, start := range parts {
			end := to[t][p]
			if end <= start {
				continue
			}
			pc, err := c.ConsumePartition(ns.Physical(t), p, start)
			if err != nil {
				return nil, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.AsyncClose()
				idle := time.NewTimer(5 * time.Second)
				defer idle.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-idle.C: // the rest of the range was aborted transactions or markers
						return
					case m, ok := <-pc.Messages():
						if !ok {
							return
						}
						idle.Reset(5 * time.Second)
						if id, err := uuid.ParseBytes(m.Key); err == nil && ours[id] {
							if kind := classify(t, m.Headers, m.Value); kind != "" {
								mu.Lock()
								keepFirst(out, id, kind, m.Timestamp)
								mu.Unlock()
							}
						}
						if m.Offset >= end-1 {
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	return out, ctx.Err()
}

// keepFirst records at as the time of id's record of kind unless an earlier
// one is known. A registration can have several records of a kind: the
// reducer re-sends the accepted event until the node's ack reaches it (and
// the node acks every copy), and the hops measure the first.
func keepFirst(out map[uuid.UUID]map[string]time.Time, id uuid.UUID, kind string, at time.Time) {
	if out[id] == nil {
		out[id] = map[string]time.Time{}
	}
	if prev, ok := out[id][kind]; !ok || at.Before(prev) {
		out[id][kind] = at
	}
}

// hop is one stretch of a registration's way.
type hop struct{ from, to, what string }

var hops = []hop{
	{recIntrospection, recInputIntro, "orchestrator ingress (introspection)"},
	{recInputIntro, recAccepted, "reducer: batch, decide, produce (introspection)"},
	{recAccepted, obsNodeAccepted, "reducer commit + delivery of the accepted event to the node"},
	{obsNodeAccepted, recAck, "node acks"},
	{recAck, recInputAck, "orchestrator ingress (ack)"},
	{recInputAck, recBecameActive, "reducer: batch, decide, produce (ack)"},
	{recBecameActive, obsNodeBecameActiv, "reducer commit + delivery of became-active to the node"},
	{recUpdateIntent, recUpdateRouted, "orchestrator routes the active update"},
	{recUpdateRouted, obsPGActive, "projector applies it (and the 5 ms poll sees it)"},
	{recRegisterIntent, recRegisterRouted, "orchestrator routes consul.register"},
	{recRegisterRouted, recConsulResult, "consul effect registers and reports"},
}

// hopSummary combines the records' times with what the observers saw.
func hopSummary(times map[uuid.UUID]map[string]time.Time, tls map[uuid.UUID]observe.Timeline) []report.Hop {
	var out []report.Hop
	for _, h := range hops {
		var ds []time.Duration
		missing := 0
		for id, t := range times {
			all := map[string]time.Time{}
			for k, v := range t {
				all[k] = v
			}
			tl := tls[id]
			all[obsNodeAccepted], all[obsPGActive], all[obsNodeBecameActiv] = tl.Accepted, tl.PGActive, tl.NodeActive
			a, b := all[h.from], all[h.to]
			if a.IsZero() || b.IsZero() {
				missing++
				continue
			}
			ds = append(ds, b.Sub(a))
		}
		out = append(out, report.Hop{What: h.what, From: h.from, To: h.to, Time: stats.Summarize(ds, missing)})
	}
	return out
}

func (b *bench) hopReport(ctx context.Context, from, to offsets, ids []uuid.UUID) ([]report.Hop, error) {
	ours := make(map[uuid.UUID]bool, len(ids))
	tls := map[uuid.UUID]observe.Timeline{}
	for _, id := range ids {
		ours[id] = true
		tl, _ := b.tracker.Get(id)
		tls[id] = tl
	}
	times, err := hopTimes(ctx, b.s.Brokers, b.ns, from, to, ours)
	if err != nil {
		return nil, fmt.Errorf("hops: %w", err)
	}
	return hopSummary(times, tls), nil
}
