package run

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/bench/internal/kafkalog"
	"github.com/omninode/onex-fleet/pkg/bus"
)

// Reading the records of the heartbeat window to count the transaction
// markers among them: at most markerReadLimit offsets of each partition
// (the rest scaled from them: the share of markers is steady under a
// steady load), and a partition that hands out nothing for markerReadIdle
// has only markers left.
const (
	markerReadLimit = 20_000
	markerReadIdle  = 3 * time.Second
)

// kafkaClient is a client of the run's broker with the services'
// settings.
func (b *bench) kafkaClient(id string) (sarama.Client, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: b.s.Brokers, ClientID: id})
	if err != nil {
		return nil, err
	}
	c, err := sarama.NewClient(b.s.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return c, nil
}

// windowRecords counts what the run's topics grew by between from and to:
// the offsets (Kafka's own topics and other fleets' left out: on the run's
// namespace only), and, once the transaction markers among them are
// counted out by reading them back, the records, also by canonical topic.
// A failure to count the markers out returns the offsets and the error.
func (b *bench) windowRecords(ctx context.Context, from, to kafkalog.Ends) (offsets int64, records float64, byTopic map[string]float64, err error) {
	var ranges []kafkalog.Range
	for _, r := range kafkalog.Grown(from, to) {
		if b.ns.Canonical(r.Topic) != r.Topic {
			ranges = append(ranges, r)
		}
	}
	for _, r := range ranges {
		offsets += r.Offsets()
	}
	cfg, err := bus.NewConfig(bus.Options{Brokers: b.s.Brokers, ClientID: "bench-records"})
	if err != nil {
		return offsets, 0, nil, err
	}
	counts, err := kafkalog.CountRecords(ctx, b.s.Brokers, cfg, ranges, markerReadLimit, markerReadIdle)
	if err != nil {
		return offsets, 0, nil, err
	}
	byTopic = map[string]float64{}
	for _, c := range counts {
		n := c.Estimate()
		records += n
		byTopic[b.ns.Canonical(c.Topic)] += n
	}
	return offsets, records, byTopic, nil
}

// perItem divides every count of byTopic by n.
func perItem(byTopic map[string]float64, n float64) map[string]float64 {
	out := make(map[string]float64, len(byTopic))
	for k, v := range byTopic {
		out[k] = v / n
	}
	return out
}

// recordsPerHeartbeat records what the heartbeat window wrote to Kafka per
// heartbeat offered (kafka_records_per_heartbeat and its neighbours).
func (b *bench) recordsPerHeartbeat(ctx context.Context, from, to kafkalog.Ends, offered float64) {
	b.res.RecordsPerHeartbeat = b.recordsPer(ctx, "heartbeat", from, to, offered)
}

// recordsPerRegistration records what the registration run's CPU window
// wrote to Kafka per registration that became ACTIVE in it. In the closed
// loop as many registrations are in flight at the window's end as at its
// start, so what is written in between is what the registrations
// completed in between cost (the heartbeats of the nodes already ACTIVE
// included, as in the CPU figure).
func (b *bench) recordsPerRegistration(ctx context.Context, from, to kafkalog.Ends, completed float64) {
	b.res.RecordsPerRegistration = b.recordsPer(ctx, "registration", from, to, completed)
}

// recordsPer records, per item of n, the offsets the run's topics grew by
// between from and to (detail kafka_offsets_per_<item>), the records among
// them once the transaction markers are counted out
// (kafka_records_per_<item>) and the markers
// (kafka_transaction_markers_per_<item>), and returns the records per item
// by topic. When the markers cannot be counted out, the records detail is
// the offsets, which errs on the high side, a note says so, and it returns
// nil.
func (b *bench) recordsPer(ctx context.Context, item string, from, to kafkalog.Ends, n float64) map[string]float64 {
	if n <= 0 {
		return nil
	}
	t0 := time.Now()
	offsets, records, byTopic, err := b.windowRecords(ctx, from, to)
	b.res.Detail("kafka_offsets_per_"+item, float64(offsets)/n)
	if err != nil {
		b.res.Detail("kafka_records_per_"+item, float64(offsets)/n)
		b.res.Note("Kafka records per %s include the transaction markers (counting them out failed: %v)", item, err)
		return nil
	}
	b.res.Detail("kafka_records_per_"+item, records/n)
	b.res.Detail("kafka_transaction_markers_per_"+item, (float64(offsets)-records)/n)
	per := perItem(byTopic, n)
	b.log.Info("bench: kafka records per "+item, "records", fmt.Sprintf("%.2f", records/n),
		"offsets", fmt.Sprintf("%.2f", float64(offsets)/n), "by_topic", topicShares(per),
		"read_took", time.Since(t0).Round(time.Millisecond))
	return per
}

// topicShares formats records per item by topic, largest first, for the
// log.
func topicShares(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", n, m[n])
	}
	return strings.Join(parts, ", ")
}
