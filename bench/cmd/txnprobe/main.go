package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

func main() {
	brokers := []string{os.Getenv("KAFKA_BOOTSTRAP_SERVERS")}
	topic := "onex.probe.txn"
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	adm, err := sarama.NewClusterAdmin(brokers, c)
	if err != nil {
		panic(err)
	}
	_ = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1}, false)
	adm.Close()
	pc := sarama.NewConfig()
	pc.Version = sarama.V3_6_0_0
	pc.Producer.Idempotent = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Net.MaxOpenRequests = 1
	pc.Producer.Return.Successes = true
	pc.Producer.Partitioner = sarama.NewManualPartitioner
	pc.Producer.Transaction.ID = "probe-" + fmt.Sprint(time.Now().UnixNano())
	if os.Getenv("BACKOFF") != "" {
		d, _ := time.ParseDuration(os.Getenv("BACKOFF"))
		pc.Producer.Transaction.Retry.Backoff = d
	}
	p, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		panic(err)
	}
	cc := sarama.NewConfig()
	cc.Version = sarama.V3_6_0_0
	cc.Consumer.IsolationLevel = sarama.ReadCommitted
	if os.Getenv("WAIT") != "" {
		d, _ := time.ParseDuration(os.Getenv("WAIT"))
		cc.Consumer.MaxWaitTime = d
	}
	cons, err := sarama.NewConsumer(brokers, cc)
	if err != nil {
		panic(err)
	}
	pcons, err := cons.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		panic(err)
	}
	time.Sleep(time.Second)
	var begin, send, commit, seen []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		if err := p.BeginTxn(); err != nil {
			panic(err)
		}
		t1 := time.Now()
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("x")}); err != nil {
			panic(err)
		}
		t2 := time.Now()
		if err := p.CommitTxn(); err != nil {
			panic(err)
		}
		t3 := time.Now()
		<-pcons.Messages()
		t4 := time.Now()
		begin = append(begin, t1.Sub(t0))
		send = append(send, t2.Sub(t1))
		commit = append(commit, t3.Sub(t2))
		seen = append(seen, t4.Sub(t3))
		if os.Getenv("GAP") != "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, s := range []struct {
		n string
		d []time.Duration
	}{{"begin", begin}, {"send", send}, {"commit", commit}, {"seen-after-commit", seen}} {
		sort.Slice(s.d, func(i, j int) bool { return s.d[i] < s.d[j] })
		fmt.Printf("%-20s p50 %v p90 %v max %v\n", s.n, s.d[len(s.d)/2], s.d[len(s.d)*9/10], s.d[len(s.d)-1])
	}
}
