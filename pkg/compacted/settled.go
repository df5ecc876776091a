package compacted

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
)

// probeBytes is what one check at the end of a range asks for. Control
// batches are tens of bytes, so one fetch usually covers the markers that
// end a range; a larger batch still comes whole (KIP-74), and the check
// fetches again from past it.
const probeBytes = 64 << 10

// settled reports whether partition p holds no record in [from, end) that
// the reader's consumer is still to deliver. It reads the range from the
// partition's leader, without waiting, and sorts its record batches as
// sarama's consumer does (partitionConsumer.parseResponse): control batches
// and, under read_committed, the batches of aborted transactions are never
// delivered, nor are offsets that compaction or retention emptied. Offsets
// from the last stable offset (read_committed) or the high-water mark on are
// not readable yet, so a range reaching them is not settled.
func (r Reader) settled(p int32, from, end int64) (bool, error) {
	conf := r.Client.Config()
	committed := conf.Consumer.IsolationLevel == sarama.ReadCommitted
	leader, err := r.Client.Leader(r.Topic, p)
	if err != nil {
		return false, err
	}
	// A connection of its own: on the client's, the check would queue
	// behind the consumer's fetch in flight, which the broker holds for
	// Consumer.MaxWaitTime when there is nothing new to return, as there is
	// not at the end of a range.
	broker := sarama.NewBroker(leader.Addr())
	if err := broker.Open(conf); err != nil {
		return false, err
	}
	defer broker.Close()
	size := int32(probeBytes)
	for from < end {
		req := fetchRequest(conf, size)
		req.AddBlock(r.Topic, p, from, size, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return false, err
		}
		block := resp.GetBlock(r.Topic, p)
		if block == nil {
			return false, sarama.ErrIncompleteResponse
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			return false, block.Err
		}
		readable := block.HighWaterMarkOffset
		if committed && req.Version >= 4 {
			readable = block.LastStableOffset
		}
		if readable < end {
			return false, nil
		}
		start := from
		next, deliverable, past, cut := scan(block, from, end, committed)
		from = next
		switch {
		case deliverable:
			return false, nil
		case past:
			return true, nil
		case from > start:
			size = probeBytes
		case size < maxProbeBytes:
			// Nothing whole came back: the batch at from is larger than
			// asked for (a broker before KIP-74 cuts it), or all there was
			// were empty batches, which compaction keeps as their producer's
			// last and sarama leaves out of the response. Ask for all.
			size = maxProbeBytes
		case cut || block.Partial:
			return false, fmt.Errorf("partition %d: a record batch at offset %d is larger than %d bytes", p, from, maxProbeBytes)
		default:
			// Nothing at or after from below the readable end: the rest of
			// the range was compacted away.
			return true, nil
		}
	}
	return true, nil
}

// maxProbeBytes bounds the fetch of a check that got nothing whole back.
// Only more than that of empty batches in a row (one per producer that ever
// wrote the partition) would make it miss a record behind them.
const maxProbeBytes = 64 << 20

// scan walks the whole record batches of one fetch from offset from:
// deliverable when one holds a record in [from, end) the consumer delivers,
// past when one starts at or after end, cut when it stopped at a batch the
// fetch cut; next is the offset after the last batch walked.
func scan(block *sarama.FetchResponseBlock, from, end int64, committed bool) (next int64, deliverable, past, cut bool) {
	next = from
	// The producers whose transaction is aborted at the batch walked: an
	// aborted transaction starts at its first offset and ends at its
	// producer's abort marker.
	aborts := slices.Clone(block.AbortedTransactions)
	slices.SortFunc(aborts, func(a, b *sarama.AbortedTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	aborted := map[int64]bool{}
	for _, set := range block.RecordsSet {
		if set.MsgSet != nil { // the pre-0.11 format has neither transactions nor control records
			for _, mb := range set.MsgSet.Messages {
				switch {
				case mb.Offset >= end:
					return next, false, true, false
				case mb.Offset >= next:
					return next, true, false, false
				}
			}
			continue
		}
		b := set.RecordBatch
		if b == nil || b.PartialTrailingRecord {
			return next, false, false, true
		}
		if b.FirstOffset >= end {
			return next, false, true, false
		}
		for len(aborts) > 0 && aborts[0].FirstOffset <= b.LastOffset() {
			aborted[aborts[0].ProducerID] = true
			aborts = aborts[1:]
		}
		switch {
		case b.Control:
			if abortMarker(b) {
				delete(aborted, b.ProducerID)
			}
		case committed && b.IsTransactional && aborted[b.ProducerID]:
		default:
			for _, rec := range b.Records {
				if off := b.FirstOffset + rec.OffsetDelta; off >= next && off < end {
					return next, true, false, false
				}
			}
		}
		next = max(next, b.LastOffset()+1)
	}
	return next, false, false, false
}

// abortMarker reports whether control batch b ends a transaction by
// aborting it. Its record's key is a version and a type (0 abort, 1 commit),
// two big-endian int16s.
func abortMarker(b *sarama.RecordBatch) bool {
	if len(b.Records) == 0 || len(b.Records[0].Key) < 4 {
		return false
	}
	return int16(binary.BigEndian.Uint16(b.Records[0].Key[2:4])) == int16(sarama.ControlRecordAbort)
}

// fetchRequest is a fetch that answers at once, in the version and
// isolation level the client's consumer uses (brokerConsumer.fetchNewMessages).
func fetchRequest(conf *sarama.Config, size int32) *sarama.FetchRequest {
	req := &sarama.FetchRequest{MaxWaitTime: 0, MinBytes: 0}
	v := conf.Version
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		req.Version = 12
	case v.IsAtLeast(sarama.V2_3_0_0):
		req.Version = 11
	case v.IsAtLeast(sarama.V2_1_0_0):
		req.Version = 10
	case v.IsAtLeast(sarama.V2_0_0_0):
		req.Version = 8
	case v.IsAtLeast(sarama.V1_1_0_0):
		req.Version = 7
	case v.IsAtLeast(sarama.V1_0_0_0):
		req.Version = 6
	case v.IsAtLeast(sarama.V0_11_0_0):
		req.Version = 5
	case v.IsAtLeast(sarama.V0_10_1_0):
		req.Version = 3
	case v.IsAtLeast(sarama.V0_10_0_0):
		req.Version = 2
	case v.IsAtLeast(sarama.V0_9_0_0):
		req.Version = 1
	}
	if req.Version >= 3 {
		req.MaxBytes = size
	}
	if req.Version >= 4 {
		req.Isolation = conf.Consumer.IsolationLevel
	}
	if req.Version >= 7 {
		req.SessionID, req.SessionEpoch = 0, -1 // no fetch session
	}
	if req.Version >= 11 {
		req.RackID = conf.RackID
	}
	return req
}
