package compacted

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// batch builds a record batch of producer pid at first with one record per
// offset delta in deltas.
func batch(first int64, last int32, pid int64, txn bool, deltas ...int64) *sarama.Records {
	b := &sarama.RecordBatch{FirstOffset: first, LastOffsetDelta: last, ProducerID: pid, IsTransactional: txn}
	for _, d := range deltas {
		b.Records = append(b.Records, &sarama.Record{OffsetDelta: d})
	}
	return &sarama.Records{RecordBatch: b}
}

// marker builds the control batch ending producer pid's transaction.
func marker(off, pid int64, commit bool) *sarama.Records {
	typ := byte(0)
	if commit {
		typ = 1
	}
	return &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: off, ProducerID: pid, IsTransactional: true, Control: true,
		Records: []*sarama.Record{{Key: []byte{0, 0, 0, typ}}}}}
}

// scan sorts the batches of one fetch as sarama's consumer does; the cases
// the broker cannot be made to produce at will (interleaved producers, a
// batch compaction emptied in part, a cut batch) are built by hand.
func TestScan(t *testing.T) {
	aborted := func(pid, first int64) *sarama.AbortedTransaction {
		return &sarama.AbortedTransaction{ProducerID: pid, FirstOffset: first}
	}
	tests := []struct {
		name             string
		sets             []*sarama.Records
		aborts           []*sarama.AbortedTransaction
		from, end        int64
		uncommitted      bool
		next             int64
		deliverable, cut bool
		past             bool
	}{
		{name: "only a commit marker", sets: []*sarama.Records{marker(3, 1, true)}, from: 3, end: 4, next: 4},
		{name: "a record before end", sets: []*sarama.Records{batch(2, 0, 1, false, 0)}, from: 2, end: 4, deliverable: true},
		{name: "a record read already", sets: []*sarama.Records{batch(0, 2, 1, false, 0, 1, 2)}, from: 3, end: 5, next: 3},
		{name: "records compacted out of a batch", sets: []*sarama.Records{batch(0, 9, 1, false, 1)}, from: 2, end: 20, next: 10},
		{name: "a batch at end", sets: []*sarama.Records{marker(3, 1, true), batch(4, 0, 1, false, 0)}, from: 3, end: 4, next: 4, past: true},
		{name: "an aborted transaction", sets: []*sarama.Records{batch(3, 1, 7, true, 0, 1), marker(5, 7, false)},
			aborts: []*sarama.AbortedTransaction{aborted(7, 3)}, from: 3, end: 6, next: 6},
		{name: "aborted records read uncommitted", sets: []*sarama.Records{batch(3, 1, 7, true, 0, 1), marker(5, 7, false)},
			aborts: []*sarama.AbortedTransaction{aborted(7, 3)}, from: 3, end: 6, uncommitted: true, deliverable: true},
		{name: "a committed producer between aborted batches", sets: []*sarama.Records{
			batch(3, 0, 7, true, 0), batch(4, 0, 8, true, 0), marker(5, 8, true), batch(6, 0, 7, true, 0), marker(7, 7, false)},
			aborts: []*sarama.AbortedTransaction{aborted(7, 3)}, from: 3, end: 8, deliverable: true},
		{name: "a producer's later transaction committed", sets: []*sarama.Records{
			batch(3, 0, 7, true, 0), marker(4, 7, false), batch(5, 0, 7, true, 0), marker(6, 7, true)},
			aborts: []*sarama.AbortedTransaction{aborted(7, 3)}, from: 3, end: 7, deliverable: true},
		{name: "aborted transactions listed out of order", sets: []*sarama.Records{
			batch(3, 0, 7, true, 0), batch(4, 0, 8, true, 0), marker(5, 8, false), marker(6, 7, false)},
			aborts: []*sarama.AbortedTransaction{aborted(8, 4), aborted(7, 3)}, from: 3, end: 7, next: 7},
		{name: "a cut batch", sets: []*sarama.Records{marker(3, 1, true), {RecordBatch: &sarama.RecordBatch{FirstOffset: 4, PartialTrailingRecord: true}}},
			from: 3, end: 9, next: 4, cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := &sarama.FetchResponseBlock{RecordsSet: tt.sets, AbortedTransactions: tt.aborts}
			next, deliverable, past, cut := scan(block, tt.from, tt.end, !tt.uncommitted)
			if deliverable != tt.deliverable || past != tt.past || cut != tt.cut || (!deliverable && next != tt.next) {
				t.Errorf("scan = next %d, deliverable %v, past %v, cut %v; want %d, %v, %v, %v",
					next, deliverable, past, cut, tt.next, tt.deliverable, tt.past, tt.cut)
			}
		})
	}
}

// Compaction leaves offsets that hold nothing; a read and its check at the
// end step over them. The broker's cleaner runs every 15 s or so, so the
// test waits for it.
func TestCompactionGaps(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the log cleaner")
	}
	brokers := testkit.KafkaBrokers(t)
	s := func(v string) *string { return &v }
	name := topic(t, brokers, 1, map[string]*string{"cleanup.policy": s("compact"), "segment.ms": s("100"),
		"min.cleanable.dirty.ratio": s("0.001"), "delete.retention.ms": s("0"), "min.compaction.lag.ms": s("0")})
	w := newWriter(t, brokers, name)
	r := Reader{Client: committedClient(t, brokers), Topic: name}
	read := func(from, end int64) []int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var offs []int64
		if _, err := r.ReadPartition(ctx, 0, from, end, func(m *sarama.ConsumerMessage) error {
			offs = append(offs, m.Offset)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return offs
	}
	// One record, then two keys written over and over, then keys of their
	// own to roll segments (the cleaner leaves the active one alone) until
	// the cleaner has removed all but the latest of the two: offsets 1 … 8
	// are then a gap, for good, since nothing else is ever superseded.
	w.send(0, "first")
	for i := range 10 {
		w.send(0, fmt.Sprint("k", i%2))
	}
	written := 11
	deadline := time.Now().Add(90 * time.Second)
	var offs []int64
	for {
		w.send(0, fmt.Sprint("u", written))
		written++
		time.Sleep(150 * time.Millisecond)
		if written%10 == 0 {
			if offs = read(sarama.OffsetOldest, sarama.OffsetNewest); len(offs) == written-8 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not compacted within 90 s: %d records of %d", len(offs), written)
		}
	}
	if offs[0] != 0 || offs[1] != 9 {
		t.Fatalf("records at %v, want 0, then 9 on", offs)
	}
	tests := []struct {
		name      string
		from, end int64
		want      []int64
	}{
		{"over the gap", sarama.OffsetOldest, sarama.OffsetNewest, offs},
		{"from within the gap", 3, sarama.OffsetNewest, offs[1:]},
		{"to within the gap", sarama.OffsetOldest, 5, offs[:1]},
		{"within the gap", 2, 5, nil},
		{"to the end of the gap", 1, 9, nil},
		{"to the first record after it", 1, 10, offs[1:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(tt.from, tt.end); !slices.Equal(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
		})
	}
	for _, c := range []struct {
		from, end int64
		settled   bool
	}{
		{1, 5, true},
		{1, 9, true},
		{1, 10, false},
	} {
		if got, err := r.settled(0, c.from, c.end); err != nil || got != c.settled {
			t.Errorf("settled(%d, %d) = %v, %v; want %v", c.from, c.end, got, err, c.settled)
		}
	}
}
