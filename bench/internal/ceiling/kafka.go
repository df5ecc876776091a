package ceiling

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/stats"
	"github.com/omninode/onex-fleet/pkg/bus"
)

// KafkaResult is the raw produce-to-consume measurement.
type KafkaResult struct {
	Rate         Rate `json:"rate"`
	MessageBytes int  `json:"message_bytes"`
	Produced     int64
	// RoundTrip is the time of one acknowledged produce of one message
	// (what a service pays per record it publishes synchronously), over
	// 200 sends on an otherwise idle topic.
	RoundTrip stats.Summary `json:"round_trip"`
}

// Kafka measures the raw produce-to-consume rate: one producer and one
// consumer with the fleet's own client settings (bus.NewConfig: idempotent,
// acks=all, LZ4, read_committed) move copies of value (with headers, keyed
// by random node ids) through a fresh topic of partitions partitions, as
// fast as they can, for duration. The rate counts messages consumed after a
// warm-up of a fifth of the duration, when the pipeline is full. The topic is
// deleted afterwards.
func Kafka(ctx context.Context, brokers []string, topic string, partitions int32, value []byte, headers []sarama.RecordHeader, duration time.Duration) (KafkaResult, error) {
	res := KafkaResult{MessageBytes: len(value)}
	for _, h := range headers {
		res.MessageBytes += len(h.Key) + len(h.Value)
	}
	admin, err := sarama.NewClusterAdmin(brokers, adminConfig())
	if err != nil {
		return res, fmt.Errorf("kafka ceiling: admin: %w", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		return res, fmt.Errorf("kafka ceiling: create %s: %w", topic, err)
	}
	defer func() { _ = admin.DeleteTopic(topic) }()

	pcfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-ceiling"})
	if err != nil {
		return res, err
	}
	ccfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-ceiling"})
	if err != nil {
		return res, err
	}
	client, err := sarama.NewClient(brokers, ccfg)
	if err != nil {
		return res, fmt.Errorf("kafka ceiling: %w", err)
	}
	defer client.Close()
	// A just-created topic may take a moment to have leaders.
	var parts []int32
	for deadline := time.Now().Add(10 * time.Second); ; {
		_ = client.RefreshMetadata(topic)
		parts, err = client.Partitions(topic)
		if err == nil && int32(len(parts)) == partitions {
			if _, lerr := client.Leader(topic, parts[len(parts)-1]); lerr == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("kafka ceiling: topic %s has no leaders: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return res, err
	}
	defer consumer.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var consumed atomic.Int64
	var wg sync.WaitGroup
	for _, p := range parts {
		// A new topic's leadership may still be settling: retry briefly.
		var pc sarama.PartitionConsumer
		for attempt := 0; ; attempt++ {
			pc, err = consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err == nil || attempt == 50 {
				break
			}
			time.Sleep(200 * time.Millisecond)
			_ = client.RefreshMetadata(topic)
		}
		if err != nil {
			return res, fmt.Errorf("kafka ceiling: consume: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-pc.Messages():
					if !ok {
						return
					}
					consumed.Add(1)
				}
			}
		}()
	}

	prod, err := sarama.NewAsyncProducer(brokers, pcfg)
	if err != nil {
		return res, fmt.Errorf("kafka ceiling: producer: %w", err)
	}
	var perr atomic.Value
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range prod.Successes() {
		}
	}()
	go func() {
		defer wg.Done()
		for e := range prod.Errors() {
			perr.Store(e.Err)
		}
	}()
	keys := make([]sarama.ByteEncoder, 4096)
	for i := range keys {
		keys[i] = sarama.ByteEncoder(uuid.New().String())
	}
	warm := duration / 5
	start := time.Now()
	var mark int64
	marked := false
	for i := 0; ; i++ {
		now := time.Since(start)
		if !marked && now >= warm {
			mark, marked = consumed.Load(), true
		}
		if now >= duration || ctx.Err() != nil {
			break
		}
		prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: keys[i%len(keys)], Value: sarama.ByteEncoder(value), Headers: headers}
		res.Produced++
	}
	res.Rate = Rate{Count: consumed.Load() - mark, Seconds: (duration - warm).Seconds()}
	cancel()
	prod.AsyncClose()
	wg.Wait()
	if e, ok := perr.Load().(error); ok && res.Rate.Count == 0 {
		return res, fmt.Errorf("kafka ceiling: produce: %w", e)
	}
	rcfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-ceiling"})
	if err != nil {
		return res, err
	}
	sp, err := bus.NewProducer(brokers, rcfg, nil)
	if err != nil {
		return res, err
	}
	defer sp.Close()
	var rtts []time.Duration
	for i := 0; i < 200; i++ {
		t := time.Now()
		if err := sp.Send(context.WithoutCancel(ctx), &sarama.ProducerMessage{Topic: topic, Key: keys[i], Value: sarama.ByteEncoder(value), Headers: headers}); err != nil {
			return res, fmt.Errorf("kafka ceiling: round trip: %w", err)
		}
		rtts = append(rtts, time.Since(t))
	}
	res.RoundTrip = stats.Summarize(rtts, 0)
	return res, nil
}

func adminConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = bus.KafkaVersion
	c.ClientID = "bench-admin"
	return c
}
