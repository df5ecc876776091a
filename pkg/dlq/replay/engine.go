package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Status is the outcome of one decision, as written to
// dlq_replay_history.replay_status (spec 5.6), plus PENDING for a dry run.
type Status string

// Statuses.
const (
	StatusCompleted   Status = "COMPLETED"
	StatusFailed      Status = "FAILED"
	StatusQuarantined Status = "QUARANTINED"
	StatusSkipped     Status = "SKIPPED"
	// StatusPending is a dry run's "would do": never written to history.
	StatusPending Status = "PENDING"
)

// HistoryRow is one row of dlq_replay_history (spec 5.6).
type HistoryRow struct {
	// ID is the row id: the quarantine correlation id for a QUARANTINED
	// row (so the quarantine record finds its row), a new v4 otherwise.
	ID uuid.UUID
	// OriginalMessageID is Entry.ID of the DLQ record.
	OriginalMessageID uuid.UUID
	// ReplayCorrelationID is the run's id (x-replay-correlation-id).
	ReplayCorrelationID uuid.UUID
	// OriginalTopic is the record's original_topic ("" → NULL).
	OriginalTopic string
	// TargetTopic is where the record went: the original topic for a
	// replay, the quarantine topic for a quarantine, "" (NULL) otherwise.
	TargetTopic string
	Status      Status
	Timestamp   time.Time
	// Success is true for COMPLETED only.
	Success bool
	// ErrorMessage is the reason (quarantine, skip) or the sanitized error
	// (failure); "" → NULL.
	ErrorMessage string
	DLQOffset    int64
	DLQPartition int32
	RetryCount   int
}

// Tracker records decisions and remembers them across runs.
type Tracker interface {
	// Handled returns the terminal status (COMPLETED or QUARANTINED) that an
	// earlier run recorded for e, if any.
	Handled(ctx context.Context, e *Entry) (Status, bool, error)
	// Record writes row; an error stops the run.
	Record(ctx context.Context, row HistoryRow) error
}

// Config is one replay run.
type Config struct {
	// Filter selects the records the run considers.
	Filter Filter
	// MaxReplayCount quarantines records whose retry_count reached it (> 0).
	MaxReplayCount int
	// RateLimit bounds records written (replays and quarantines) per
	// second (> 0).
	RateLimit float64
	// DryRun decides and reports but writes nothing: no record, no history.
	DryRun bool
	// QuarantineTopic; empty means topics.DLQQuarantine.
	QuarantineTopic string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is put in front of the original
	// topic a record is replayed to (original_topic is canonical) and of
	// the quarantine topic.
	Namespace topicns.Namespace
	// Limit stops the run after this many records were acted on (replayed,
	// quarantined, or failed); 0 means no limit.
	Limit int
	// Log receives one line per decision (nil: discarded).
	Log *slog.Logger
	// Now is the clock for x-replayed-at, quarantined_at and history rows;
	// nil means time.Now.
	Now func() time.Time
	// NewID makes run and quarantine ids; nil means uuid.New.
	NewID func() uuid.UUID
}

func (c *Config) defaults() error {
	if c.MaxReplayCount <= 0 {
		return fmt.Errorf("max replay count must be > 0 (got %d)", c.MaxReplayCount)
	}
	if !(c.RateLimit > 0) || math.IsInf(c.RateLimit, 0) {
		return fmt.Errorf("rate limit must be a finite number > 0 (got %v)", c.RateLimit)
	}
	if c.Limit < 0 {
		return fmt.Errorf("limit must not be negative (got %d)", c.Limit)
	}
	if err := c.Filter.Validate(); err != nil {
		return err
	}
	if c.QuarantineTopic == "" {
		c.QuarantineTopic = topics.DLQQuarantine
	}
	c.QuarantineTopic = c.Namespace.Physical(c.QuarantineTopic)
	if !validKafkaName(c.QuarantineTopic) {
		return fmt.Errorf("quarantine topic %q is not a valid Kafka topic name", c.QuarantineTopic)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.New
	}
	return nil
}

// Outcome is what happened to one selected record.
type Outcome struct {
	Position      string `json:"position"`
	CorrelationID string `json:"correlation_id"`
	OriginalTopic string `json:"original_topic"`
	ErrorType     string `json:"error_type"`
	RetryCount    int    `json:"retry_count"`
	Action        Action `json:"action"`
	Status        Status `json:"status"`
	TargetTopic   string `json:"target_topic,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// Report is the result of a run.
type Report struct {
	RunID    uuid.UUID `json:"replay_correlation_id"`
	DryRun   bool      `json:"dry_run"`
	Tracking bool      `json:"tracking"`
	// Scanned counts every record read; NotSelected those outside the
	// filter (left alone, not in Outcomes).
	Scanned     int       `json:"scanned"`
	NotSelected int       `json:"not_selected"`
	Outcomes    []Outcome `json:"outcomes"`
}

// Count returns how many outcomes have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == s {
			n++
		}
	}
	return n
}

// Engine runs replays.
type Engine struct {
	scanner  Scanner
	producer sarama.SyncProducer
	tracker  Tracker
}

// NewEngine returns an Engine that reads through scanner, writes through
// producer (which may be nil for dry runs only; build it from a client made
// with NewClientConfig so replays keep their partition) and records
// through tracker (nil: no tracking).
func NewEngine(scanner Scanner, producer sarama.SyncProducer, tracker Tracker) *Engine {
	return &Engine{scanner: scanner, producer: producer, tracker: tracker}
}

// Run replays the selected records of dlqTopics (see Decide) and returns
// what it did. For each selected record, in scan order:
//   - with a tracker, a record an earlier run COMPLETED or QUARANTINED is
//     SKIPPED;
//   - a record to replay is written with ReplayMessage and, once the broker
//     acknowledged it, recorded COMPLETED; one to quarantine is written with
//     QuarantineMessage, then recorded QUARANTINED; a write that fails is
//     recorded FAILED — and ends the run when the failure is retriable (the
//     broker is in trouble; the next records would fail the same way);
//   - writes are spaced to cfg.RateLimit per second.
//
// A record is written before it is recorded, so a crash in between replays
// it again on the next run: consumers of the original topics are
// idempotent, and a replay keeps the original envelope id. Run returns an
// error (with the report so far) when it had to stop: a scan failure, a
// tracker failure, a retriable write failure or ctx's end.
func (en *Engine) Run(ctx context.Context, dlqTopics []string, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	for _, t := range dlqTopics {
		if t == cfg.QuarantineTopic {
			return nil, fmt.Errorf("%s is the quarantine topic: quarantined records are never replayed", t)
		}
	}
	if !cfg.DryRun && en.producer == nil {
		return nil, errors.New("replay: no producer")
	}
	rep := &Report{RunID: cfg.NewID(), DryRun: cfg.DryRun, Tracking: en.tracker != nil, Outcomes: []Outcome{}}
	lim := limiter{interval: time.Duration(float64(time.Second) / cfg.RateLimit)}
	acted := 0
	err := en.scanner.Scan(ctx, dlqTopics, func(e *Entry) error {
		rep.Scanned++
		if ok, _ := cfg.Filter.Match(e); !ok {
			rep.NotSelected++
			return nil
		}
		d := Decide(e, cfg.Filter, cfg.MaxReplayCount)
		o, row, err := en.handle(ctx, e, d, rep.RunID, cfg, &lim)
		rep.Outcomes = append(rep.Outcomes, o)
		logOutcome(cfg.Log, e, o)
		if row != nil && !cfg.DryRun && en.tracker != nil {
			if rerr := en.tracker.Record(ctx, *row); rerr != nil {
				return fmt.Errorf("record %s as %s in dlq_replay_history: %w", e.Position(), row.Status, rerr)
			}
		}
		if err != nil {
			return err
		}
		if o.Action != ActionSkip {
			acted++
			if cfg.Limit > 0 && acted >= cfg.Limit {
				return ErrStop
			}
		}
		return nil
	})
	return rep, err
}

// handle carries out decision d for e. It returns the outcome, the history
// row to record (nil: none) and an error that must end the run.
func (en *Engine) handle(ctx context.Context, e *Entry, d Decision, runID uuid.UUID, cfg Config, lim *limiter) (Outcome, *HistoryRow, error) {
	now := cfg.Now()
	o := Outcome{Position: e.Position(), CorrelationID: e.CorrelationID(), OriginalTopic: e.OriginalTopic(), ErrorType: e.ErrorType(),
		RetryCount: e.RetryCount(), Action: d.Action, Reason: d.Reason}
	row := &HistoryRow{ID: cfg.NewID(), OriginalMessageID: e.ID(), ReplayCorrelationID: runID, OriginalTopic: e.OriginalTopic(),
		Timestamp: now, ErrorMessage: d.Reason, DLQOffset: e.Offset, DLQPartition: e.Partition, RetryCount: e.RetryCount()}
	if d.Action == ActionSkip {
		o.Status, row.Status = StatusSkipped, StatusSkipped
		return o, row, nil
	}
	if en.tracker != nil {
		st, done, err := en.tracker.Handled(ctx, e)
		if err != nil {
			o.Status = StatusFailed
			o.Reason = "tracking lookup failed: " + infraerr.SanitizeError(err)
			return o, nil, fmt.Errorf("look up %s in dlq_replay_history: %w", e.Position(), err)
		}
		if done {
			o.Action, o.Status = ActionSkip, StatusSkipped
			o.Reason = "already " + string(st) + " by an earlier run"
			row.Status, row.ErrorMessage = StatusSkipped, o.Reason
			return o, row, nil
		}
	}
	var pm *sarama.ProducerMessage
	var err error
	if d.Action == ActionReplay {
		o.TargetTopic = cfg.Namespace.Physical(e.Record.OriginalTopic)
		pm, err = ReplayMessage(e, runID, now)
		if pm != nil {
			pm.Topic = o.TargetTopic
		}
	} else {
		o.TargetTopic = cfg.QuarantineTopic
		pm, err = QuarantineMessage(e, d.Reason, row.ID, cfg.QuarantineTopic, now)
	}
	row.TargetTopic = o.TargetTopic
	if err == nil && cfg.DryRun {
		o.Status = StatusPending
		return o, nil, nil
	}
	if err == nil {
		if err = lim.wait(ctx); err != nil {
			o.Status = StatusFailed
			o.Reason = "cancelled before the write"
			return o, nil, err
		}
		err = send(en.producer, pm)
	}
	if err != nil {
		o.Status, row.Status, row.Success = StatusFailed, StatusFailed, false
		why := infraerr.SanitizeError(err)
		if d.Reason != "" {
			why = d.Reason + "; " + why
		}
		o.Reason, row.ErrorMessage = why, why
		if infraerr.Retriable(err) || ctx.Err() != nil {
			return o, row, fmt.Errorf("write to %s: %w", o.TargetTopic, err)
		}
		return o, row, nil
	}
	if d.Action == ActionReplay {
		o.Status, row.Status, row.Success = StatusCompleted, StatusCompleted, true
	} else {
		o.Status, row.Status = StatusQuarantined, StatusQuarantined
	}
	return o, row, nil
}

// send writes pm and classifies a failure like the DLQ publisher does.
func send(p sarama.SyncProducer, pm *sarama.ProducerMessage) error {
	_, _, err := p.SendMessage(pm)
	if err == nil {
		return nil
	}
	ectx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "dlq_replay_publish", Target: pm.Topic}
	kind, known := infraerr.KindOf(err)
	switch {
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		kind = infraerr.KindConfiguration
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed):
		kind = infraerr.KindAuthentication
	case errors.Is(err, sarama.ErrMessageSizeTooLarge), errors.Is(err, sarama.ErrInvalidMessage):
		kind = infraerr.KindRequestRejected
	case errors.Is(err, sarama.ErrRequestTimedOut):
		kind = infraerr.KindTimeout
	case !known:
		kind = infraerr.KindConnection
	}
	return infraerr.New(kind, ectx, "publish failed", err)
}

func logOutcome(log *slog.Logger, e *Entry, o Outcome) {
	level := slog.LevelInfo
	if o.Status == StatusFailed {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, "dlq record "+string(o.Status),
		"correlation_id", o.CorrelationID, "dlq_position", o.Position, "original_topic", o.OriginalTopic,
		"error_type", o.ErrorType, "action", string(o.Action), "target_topic", o.TargetTopic, "reason", o.Reason,
		"record_id", e.ID().String())
}

// limiter spaces writes at least interval apart.
type limiter struct {
	interval time.Duration
	next     time.Time
}

func (l *limiter) wait(ctx context.Context) error {
	now := time.Now()
	if d := l.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		now = l.next
	}
	l.next = now.Add(l.interval)
	return nil
}
