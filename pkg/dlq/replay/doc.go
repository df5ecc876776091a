// Package replay reads the fleet's dead-letter topics and brings their
// records back (spec 8.4): it lists, counts and finds DLQ records, decides
// for each selected record whether it is replayed to its original topic or
// quarantined to onex.dlq.omnibase-infra.quarantine.v1, and writes those
// records with the spec's bodies and headers.
//
// Reading never joins or commits a consumer group: every partition is read
// from its oldest offset up to the high-water mark it had when the scan
// started, so a scan ends even while the topic keeps growing, and running it
// changes nothing for anybody else. Reads are read_committed, so dead letters
// written inside a Kafka transaction that aborted (the reducer writes its
// dead letters transactionally) are never seen.
//
// Which records a run touches is the operator's selection (Filter: original
// topic, error type, correlation id, failure-time window). Among the
// selected records the spec's eligibility checks run in its order: a
// record whose retry_count reached the maximum replay count, then one whose
// error type is not retryable (NonRetryable), is quarantined; everything else
// is replayed, byte for byte (a protobuf original that this build cannot
// restore, dlq.RestoreValue, is left alone instead; see Decide). Records outside the selection are left alone: the scan commits
// nothing, so they stay in their DLQ for a later run. (The Python replay node
// drains its DLQ through a committed consumer group and must therefore
// quarantine whatever it does not replay; this tool has no such need.)
//
// A Tracker (dlq_replay_history in PostgreSQL, see onexctl) records every
// decision and makes a run skip records that an earlier run already replayed
// or quarantined.
package replay
