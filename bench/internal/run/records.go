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

// recordsPerHeartbeat records what the heartbeat window wrote to Kafka per
// heartbeat offered: the offsets every topic grew by (Kafka's own topics
// left out), and the records among them once the transaction markers are
// counted out by reading them back.
func (b *bench) recordsPerHeartbeat(ctx context.Context, from, to kafkalog.Ends, offered float64) {
	if offered <= 0 {
		return
	}
	// Only the run's topics: on its namespace, what other fleets on the
	// broker write is not the run's work.
	var ranges []kafkalog.Range
	for _, r := range kafkalog.Grown(from, to) {
		if b.ns.Canonical(r.Topic) != r.Topic {
			ranges = append(ranges, r)
		}
	}
	var offsets int64
	for _, r := range ranges {
		offsets += r.Offsets()
	}
	b.res.Detail("kafka_offsets_per_heartbeat", float64(offsets)/offered)
	cfg, err := bus.NewConfig(bus.Options{Brokers: b.s.Brokers, ClientID: "bench-records"})
	if err != nil {
		b.res.Note("Kafka records per heartbeat: %v", err)
		return
	}
	t0 := time.Now()
	counts, err := kafkalog.CountRecords(ctx, b.s.Brokers, cfg, ranges, markerReadLimit, markerReadIdle)
	if err != nil {
		// Without the markers counted out, the figure is the offsets: it
		// errs on the high side and says so.
		b.res.Detail(keyRecordsPerHeartbeat, float64(offsets)/offered)
		b.res.Note("Kafka records per heartbeat include the transaction markers (counting them out failed: %v)", err)
		return
	}
	var records float64
	byTopic := map[string]float64{}
	for _, c := range counts {
		n := c.Estimate()
		records += n
		byTopic[b.ns.Canonical(c.Topic)] += n / offered
	}
	b.res.Detail(keyRecordsPerHeartbeat, records/offered)
	b.res.Detail("kafka_transaction_markers_per_heartbeat", (float64(offsets)-records)/offered)
	b.res.RecordsPerHeartbeat = byTopic
	b.log.Info("bench: kafka records per heartbeat", "records", fmt.Sprintf("%.2f", records/offered),
		"offsets", fmt.Sprintf("%.2f", float64(offsets)/offered), "by_topic", topicShares(byTopic),
		"read_took", time.Since(t0).Round(time.Millisecond))
}

// topicShares formats records per heartbeat by topic, largest first, for
// the log.
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
