package dlqcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/dlq/replay"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/observability"
)

// item is one record in list output.
type item struct {
	Position         string  `json:"position"`
	Kind             string  `json:"kind"`
	FailedAt         string  `json:"failure_timestamp,omitempty"`
	OriginalTopic    string  `json:"original_topic,omitempty"`
	ErrorType        string  `json:"error_type,omitempty"`
	FailureType      string  `json:"failure_type,omitempty"`
	FailureClass     string  `json:"failure_class,omitempty"`
	RetryCount       int     `json:"retry_count"`
	CorrelationID    string  `json:"correlation_id,omitempty"`
	Key              *string `json:"key"`
	FailureReason    string  `json:"failure_reason,omitempty"`
	QuarantineReason string  `json:"quarantine_reason,omitempty"`
	DecodeError      string  `json:"decode_error,omitempty"`
}

func kindOf(e *replay.Entry) string {
	switch {
	case e.Record != nil:
		return "dlq"
	case e.Quarantined != nil:
		return "quarantine"
	}
	return "undecodable"
}

func itemOf(e *replay.Entry) item {
	it := item{Position: e.Position(), Kind: kindOf(e), OriginalTopic: e.OriginalTopic(), ErrorType: e.ErrorType(),
		FailureClass: e.FailureClass(), RetryCount: e.RetryCount(), CorrelationID: e.CorrelationID()}
	switch {
	case e.Record != nil:
		it.FailedAt, it.FailureType, it.FailureReason = e.Record.FailureTimestamp, e.Record.FailureType, e.Record.FailureReason
		it.Key = e.Record.OriginalMessage.Key
	case e.Quarantined != nil:
		it.FailedAt, it.QuarantineReason = e.Quarantined.QuarantinedAt, e.Quarantined.Reason
	default:
		it.DecodeError = e.DecodeErr.Error()
	}
	return it
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listCmd() *cobra.Command {
	var o common
	var f filters
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered records, optionally filtered",
		Long: `Lists the records of the DLQ topics (all onex.dlq.* topics but the quarantine,
or --dlq-topic), oldest first per partition, up to --limit (0: all). With
--dlq-topic onex.dlq.omnibase-infra.quarantine.v1 it lists quarantined records.
-o json writes one JSON object per record.`,
		Args: cobra.NoArgs,
	}
	o.register(c)
	f.register(c)
	c.Flags().IntVar(&limit, "limit", 100, "stop after this many records (0: all)")
	c.Flags().StringVarP(&o.output, "output", "o", "table", "table or json")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return run(cmd, "list", func(ctx context.Context) error {
			if limit < 0 {
				return usage{errors.New("--limit must not be negative")}
			}
			flt, err := f.build()
			if err != nil {
				return usage{err}
			}
			cn, err := o.connect()
			if err != nil {
				return err
			}
			defer cn.Close()
			ts, err := cn.topics()
			if err != nil {
				return err
			}
			var items []item
			err = cn.scanner().Scan(ctx, ts, func(e *replay.Entry) error {
				if ok, _ := flt.Match(e); !ok {
					return nil
				}
				items = append(items, itemOf(e))
				if limit > 0 && len(items) >= limit {
					return replay.ErrStop
				}
				return nil
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				return jsonLines(out, items)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POSITION\tFAILED_AT\tORIGINAL_TOPIC\tERROR_TYPE\tCLASS\tRETRIES\tCORRELATION_ID")
			for _, it := range items {
				et := it.ErrorType
				if it.Kind == "undecodable" {
					et = replay.Undecodable
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", it.Position, dash(it.FailedAt), dash(it.OriginalTopic), dash(et),
					dash(it.FailureClass), it.RetryCount, dash(it.CorrelationID))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if limit > 0 && len(items) == limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "stopped at --limit %d; there may be more\n", limit)
			}
			return nil
		})
	}
	return c
}

func jsonLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

// detail is one record in show output.
type detail struct {
	Position    string          `json:"position"`
	RecordID    string          `json:"record_id"`
	Timestamp   time.Time       `json:"kafka_timestamp"`
	Kind        string          `json:"kind"`
	Key         *string         `json:"key"`
	Headers     []replay.Header `json:"headers"`
	Body        json.RawMessage `json:"body,omitempty"`
	BodyText    *string         `json:"body_text,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
	// OriginalContentType and OriginalEncoding are set for a protobuf
	// original; OriginalValue is then its protojson, shown as JSON rather
	// than as the escaped string inside body.
	OriginalContentType string          `json:"original_content_type,omitempty"`
	OriginalEncoding    string          `json:"original_value_encoding,omitempty"`
	OriginalValue       json.RawMessage `json:"original_value,omitempty"`
	Envelope            json.RawMessage `json:"original_envelope,omitempty"`
	EnvelopeError       string          `json:"original_envelope_error,omitempty"`
	ReplayDecision      *decision       `json:"replay_decision,omitempty"`
}

type decision struct {
	Action replay.Action `json:"action"`
	Reason string        `json:"reason,omitempty"`
}

// originalValue is the dead-lettered message's value, from a DLQ record or
// from the DLQ record inside a quarantine record.
func originalValue(e *replay.Entry) (string, bool) {
	switch {
	case e.Record != nil:
		return e.Record.OriginalMessage.Value, true
	case e.Quarantined != nil:
		if r, err := dlq.Decode(e.Quarantined.OriginalPayload); err == nil {
			return r.OriginalMessage.Value, true
		}
	}
	return "", false
}

func detailOf(e *replay.Entry) detail {
	d := detail{Position: e.Position(), RecordID: e.ID().String(), Timestamp: e.Timestamp.UTC(), Kind: kindOf(e), Headers: e.Headers}
	if d.Headers == nil {
		d.Headers = []replay.Header{}
	}
	if e.Key != nil {
		k := string(e.Key)
		d.Key = &k
	}
	if json.Valid(e.Value) {
		d.Body = e.Value
	} else {
		s := strings.ToValidUTF8(string(e.Value), "\ufffd")
		d.BodyText = &s
	}
	if e.DecodeErr != nil {
		d.DecodeError = e.DecodeErr.Error()
	}
	d.OriginalContentType, _ = e.Header(dlq.HeaderOriginalContentType)
	d.OriginalEncoding, _ = e.Header(dlq.HeaderValueEncoding)
	if v, ok := originalValue(e); ok && d.OriginalEncoding != "" {
		// A protobuf original is no envelope. Its protojson is shown as
		// JSON unless it was cut to fit the DLQ; base64 stays in body.
		if d.OriginalEncoding == dlq.EncodingProtoJSON && json.Valid([]byte(v)) {
			d.OriginalValue = json.RawMessage(v)
		}
	} else if ok {
		// A node's record may carry fields the fleet does not know
		// (docs/interop.md): read it as the orchestrator's ingress does.
		env, _, err := envelope.DecodeTolerant([]byte(v))
		if err == nil {
			var b []byte
			if b, err = env.Encode(); err == nil {
				d.Envelope = b
			}
		}
		if err != nil {
			d.EnvelopeError = err.Error()
		}
	}
	if e.Record != nil {
		dec := replay.Decide(e, replay.Filter{}, replay.DefaultMaxReplayCount)
		d.ReplayDecision = &decision{dec.Action, dec.Reason}
	}
	return d
}

func showCmd() *cobra.Command {
	var o common
	c := &cobra.Command{
		Use:   "show TOPIC/PARTITION/OFFSET | CORRELATION_ID",
		Short: "Show one dead-lettered record in full",
		Long: `Shows a record with its key, headers and body, the original message decoded as
an ONEX envelope when it is one (a protobuf original: its content type, and
its protojson as original_value), and what a replay with the default settings
would do with it. The argument is a position as list prints it, or a
correlation id (every record with it, across the DLQ topics or --dlq-topic).

The original message is shown as it was received, unsanitized: DLQ topics need
ACLs, and so does this output.`,
		Args: cobra.ExactArgs(1),
	}
	o.register(c)
	o.output = "json"
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return run(cmd, "show", func(ctx context.Context) error {
			arg := strings.TrimSpace(args[0])
			var entries []*replay.Entry
			if strings.Contains(arg, "/") {
				topic, p, off, err := replay.ParsePosition(arg)
				if err != nil {
					return usage{err}
				}
				cn, err := o.connect()
				if err != nil {
					return err
				}
				defer cn.Close()
				e, err := cn.scanner().Read(ctx, topic, p, off)
				if err != nil {
					return err
				}
				entries = append(entries, e)
			} else {
				if _, err := uuid.Parse(arg); err != nil {
					return usage{fmt.Errorf("%q is neither topic/partition/offset nor a correlation id", arg)}
				}
				cn, err := o.connect()
				if err != nil {
					return err
				}
				defer cn.Close()
				ts, err := cn.topics()
				if err != nil {
					return err
				}
				flt := replay.Filter{CorrelationIDs: []string{arg}}
				err = cn.scanner().Scan(ctx, ts, func(e *replay.Entry) error {
					if ok, _ := flt.Match(e); ok {
						entries = append(entries, e)
					}
					return nil
				})
				if err != nil {
					return err
				}
				if len(entries) == 0 {
					return fmt.Errorf("no record with correlation id %s in %s", arg, strings.Join(ts, ", "))
				}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			for _, e := range entries {
				if err := enc.Encode(detailOf(e)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return c
}

func statsCmd() *cobra.Command {
	var o common
	var f filters
	c := &cobra.Command{
		Use:   "stats",
		Short: "Count dead-lettered records per DLQ topic, original topic, error type and failure class",
		Long: `Counts every record of the DLQ topics (or --dlq-topic) that the filters select,
per DLQ topic × original topic × error type × failure class, largest first.
-o json writes one JSON object per cell.`,
		Args: cobra.NoArgs,
	}
	o.register(c)
	f.register(c)
	c.Flags().StringVarP(&o.output, "output", "o", "table", "table or json")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return run(cmd, "stats", func(ctx context.Context) error {
			flt, err := f.build()
			if err != nil {
				return usage{err}
			}
			cn, err := o.connect()
			if err != nil {
				return err
			}
			defer cn.Close()
			ts, err := cn.topics()
			if err != nil {
				return err
			}
			st := replay.Stats{}
			err = cn.scanner().Scan(ctx, ts, func(e *replay.Entry) error {
				if ok, _ := flt.Match(e); ok {
					st.Add(e)
				}
				return nil
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				return jsonLines(out, st.Rows())
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DLQ_TOPIC\tORIGINAL_TOPIC\tERROR_TYPE\tFAILURE_CLASS\tCOUNT")
			for _, r := range st.Rows() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.DLQTopic, dash(r.OriginalTopic), dash(r.ErrorType), dash(r.FailureClass), r.Count)
			}
			fmt.Fprintf(tw, "TOTAL\t\t\t\t%d\n", st.Total())
			return tw.Flush()
		})
	}
	return c
}

func replayCmd() *cobra.Command {
	var o common
	var f filters
	var dryRun, tracking bool
	var rate float64
	var maxCount, limit int
	c := &cobra.Command{
		Use:   "replay",
		Short: "Replay selected dead letters to their original topics; quarantine the non-retryable",
		Long: `Replays the selected records of the DLQ topics (or --dlq-topic) to their
original topic: original key, original value bytes, replay headers
(x-replay-count, x-replayed-at, x-replayed-by, x-original-dlq-offset,
x-replay-correlation-id, correlation_id). Among the selected records, one whose
retry_count reached --max-replay-count, or whose error type is non-retryable
(` + strings.Join(replay.NonRetryableTypes(), ", ") + `),
is quarantined to --quarantine-topic instead, never replayed. Records outside
the filters are left where they are.

Tracking (dlq_replay_history in OMNIBASE_INFRA_DB_URL) is ON by default when
OMNIBASE_INFRA_DB_URL is set: every decision is recorded, and a record that an
earlier run replayed or quarantined is skipped. --enable-tracking=false turns
it off; --enable-tracking without the variable is an error.

Fix the root cause first; consumers are idempotent, so a record replayed twice
does no harm, but one that fails again comes back to the DLQ.
Exit status: 0 done, 1 a record failed or the run stopped, 2 usage.`,
		Args: cobra.NoArgs,
	}
	o.register(c)
	f.register(c)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "decide and report, write nothing (no record, no history)")
	c.Flags().Float64Var(&rate, "rate-limit", replay.DefaultRateLimit, "records written per second, > 0")
	c.Flags().IntVar(&maxCount, "max-replay-count", replay.DefaultMaxReplayCount, "quarantine records whose retry_count reached this, > 0")
	c.Flags().IntVar(&limit, "limit", 0, "stop after acting on this many records (0: all)")
	c.Flags().BoolVar(&tracking, "enable-tracking", os.Getenv(EnvDBURL) != "", "record decisions in dlq_replay_history and skip records already replayed (default: on when "+EnvDBURL+" is set)")
	c.Flags().StringVarP(&o.output, "output", "o", "table", "table or json")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return run(cmd, "replay", func(ctx context.Context) error {
			flt, err := f.build()
			if err != nil {
				return usage{err}
			}
			dsn := os.Getenv(EnvDBURL)
			if tracking && strings.TrimSpace(dsn) == "" {
				return usage{errors.New("--enable-tracking needs " + EnvDBURL)}
			}
			cfg := replay.Config{Filter: flt, MaxReplayCount: maxCount, RateLimit: rate, DryRun: dryRun, QuarantineTopic: o.quarantine, Limit: limit,
				Log: observability.NewLogger(cmd.ErrOrStderr(), "onexctl", "info")}
			if err := validate(cfg); err != nil {
				return usage{err}
			}
			cn, err := o.connect()
			if err != nil {
				return err
			}
			defer cn.Close()
			// connect put the quarantine topic on the namespace; the
			// engine puts the replay targets there.
			cfg.QuarantineTopic, cfg.Namespace = o.quarantine, o.ns
			ts, err := cn.topics()
			if err != nil {
				return err
			}
			for _, t := range ts {
				if t == o.quarantine {
					return usage{fmt.Errorf("%s is the quarantine topic: quarantined records are never replayed", t)}
				}
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			var tracker replay.Tracker
			if tracking {
				h, err := OpenHistory(ctx, dsn, !dryRun)
				if err != nil {
					return err
				}
				defer h.Close()
				tracker = h
			}
			var producer sarama.SyncProducer
			if !dryRun {
				if producer, err = sarama.NewSyncProducerFromClient(cn.client); err != nil {
					return fmt.Errorf("producer: %w", err)
				}
				defer producer.Close()
			}
			rep, runErr := replay.NewEngine(cn.scanner(), producer, tracker).Run(ctx, ts, cfg)
			if rep != nil {
				if err := printReport(cmd.OutOrStdout(), rep, o.output); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			if rep.Count(replay.StatusFailed) > 0 {
				return &envelopecmd.ExitError{Code: 1}
			}
			return nil
		})
	}
	return c
}

// validate checks the settings the way Engine.Run will, before connecting,
// so that a bad flag is a usage error.
func validate(cfg replay.Config) error {
	if cfg.MaxReplayCount <= 0 {
		return fmt.Errorf("--max-replay-count must be > 0 (got %d)", cfg.MaxReplayCount)
	}
	if !(cfg.RateLimit > 0) || cfg.RateLimit > 1e9 {
		return fmt.Errorf("--rate-limit must be > 0 (got %v)", cfg.RateLimit)
	}
	if cfg.Limit < 0 {
		return fmt.Errorf("--limit must not be negative (got %d)", cfg.Limit)
	}
	return nil
}

func printReport(w io.Writer, rep *replay.Report, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tSTATUS\tACTION\tTARGET_TOPIC\tCORRELATION_ID\tREASON")
	for _, o := range rep.Outcomes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Position, o.Status, o.Action, dash(o.TargetTopic), dash(o.CorrelationID), dash(o.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	mode := ""
	if rep.DryRun {
		mode = " (dry run: nothing written)"
	}
	track := "tracking off"
	if rep.Tracking {
		track = "tracking on"
	}
	fmt.Fprintf(w, "run %s%s, %s: %d scanned, %d not selected, %d completed, %d quarantined, %d failed, %d skipped, %d pending\n",
		rep.RunID, mode, track, rep.Scanned, rep.NotSelected, rep.Count(replay.StatusCompleted), rep.Count(replay.StatusQuarantined),
		rep.Count(replay.StatusFailed), rep.Count(replay.StatusSkipped), rep.Count(replay.StatusPending))
	return nil
}
