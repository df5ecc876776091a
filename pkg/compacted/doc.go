// Package compacted reads state back from Kafka topics whose records are
// state, typically compacted ones (the reducer's snapshots and liveness
// checkpoint, the orchestrator's aggregations, the node-topics table): the
// records of a partition from a start offset up to an end offset, each
// handed to a callback, with an exact answer to "has everything before the
// end been read?".
//
// # Guarantees
//
// A Reader hands its callback every record of the range [from, end) that its
// client's consumer delivers, in offset order, one partition's records from
// one goroutine, and returns nil only once no such record is left. With the
// fleet's clients (read_committed, bus.NewConfig) that is every committed
// record: aborted records are never handed, and an end offset past records
// of a transaction still open is waited for until the transaction ends.
// Offsets that hold nothing to deliver are never waited for: gaps that
// compaction or retention left, transaction commit and abort markers, aborted
// records. That matters at the end of a range: the last offsets of a topic
// written in transactions are always control records, which no consumer
// delivers, so a reader that waited for the record at end-1 would wait
// forever, and one that stopped after a quiet moment could stop while a slow
// fetch was still on its way.
//
// The reader knows instead of guessing. Once a partition has delivered
// nothing for Settle, it fetches the rest of the range from the partition's
// leader itself, without waiting, and applies the consumer's own rules to
// the record batches it gets: a control batch, an aborted batch under
// read_committed and a compacted-away offset hold nothing to deliver; any
// other record before the end means the read goes on. Records past the last
// stable offset (read_committed) or the high-water mark are not yet
// decided, so a range that reaches beyond them is not complete either.
//
// # Defaults
//
// The end offset sarama.OffsetNewest is the partition's high-water mark when
// the read starts, so a read of a topic that keeps being written still ends.
// The start offset sarama.OffsetOldest, or any offset retention has already
// removed, is the oldest offset still kept. Settle is 100 ms. No Stall: a
// read waits for its range as long as its context allows. The first fetch
// error fails a read (sarama would retry it; a restore is better retried
// whole by its caller) unless FetchErrors takes them. ReadTopic reads every
// partition at once.
//
// # Trade-offs
//
// The reader keeps sarama's partition consumer for the records, with its
// prefetching, and the client's fetch settings (size, buffer, wait): a
// restore tunes them on its own client, and they decide its speed. A
// partition is quiet once it delivered nothing for Settle (to within a
// quarter of it: a ticker, not a timer reset per record); only then, and
// never while records arrive, is the end checked, with one small fetch over
// a connection of its own (on the client's, it would queue behind the
// consumer's fetch in flight, which the broker holds for
// Consumer.MaxWaitTime when there is nothing new). A range whose last offset
// is a record (a restore up to a marker it wrote) never needs the check and
// ends the moment that record arrives. A shorter Settle ends a read whose
// tail is markers or gaps sooner and checks more often while a slow
// partition has records still to come. A read returns once its consumer
// has stopped, which waits for that fetch in flight, so Consumer.MaxWaitTime
// bounds what each read adds at its end.
//
// The check trusts the log as it is when it looks. Two things it cannot see
// would end a read early: more than 64 MiB of consecutive empty batches
// (compaction keeps one per producer that wrote the partition, and sarama
// does not report them), and a record the consumer fetched that the cleaner
// removed before the check, in favour of a newer one past the end.
//
// Reads hold no state between calls: every call opens a consumer and closes
// it. Each record is handed once per read; a caller that restores twice reads
// twice.
package compacted
