package dlqcmd

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/dlq/replay"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// EnvDBURL names the database of dlq_replay_history (spec 11.1).
const EnvDBURL = "OMNIBASE_INFRA_DB_URL"

// replayLockKey is the PostgreSQL advisory lock a tracked, writing replay
// holds for its whole run, so two operators cannot replay the same records
// at once (each would find the other's records not yet recorded).
// "onexdlqr" as a big-endian int64; fixed for ever.
const replayLockKey int64 = 0x6f6e6578646c7172

// History is dlq_replay_history (spec 5.6, migration 000003) as a
// replay.Tracker. It holds one connection; it is not for concurrent use.
type History struct {
	conn   *pgx.Conn
	locked bool
}

func dbErr(op string, err error) error {
	ictx := infraerr.Context{Transport: infraerr.TransportDB, Operation: op, Target: "dlq_replay_history"}
	var ie *infraerr.Error
	if errors.As(err, &ie) {
		return infraerr.Wrap(err, ictx, "")
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "28") || pg.Code == "42501") {
		// The server's own text ("password authentication failed for user
		// ...") would be redacted whole by the sanitizer; say what to fix.
		return infraerr.New(infraerr.KindAuthentication, ictx,
			"PostgreSQL refused the login or the permission (SQLSTATE "+pg.Code+"): check the user in "+EnvDBURL, nil)
	}
	if errors.As(err, &pg) && pg.Code == "3D000" {
		return infraerr.Configuration(ictx, "the database named in "+EnvDBURL+" does not exist (SQLSTATE 3D000)", nil)
	}
	kind, ok := infraerr.KindOf(err)
	if !ok {
		kind = infraerr.KindConnection
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// pgx lists every address it tried, with user and database; the
		// innermost cause ("connection refused") is what matters.
		return infraerr.New(kind, ictx, "cannot connect to the PostgreSQL server of "+EnvDBURL, rootCause(err))
	}
	return infraerr.New(kind, ictx, "postgres "+op, err)
}

// OpenHistory connects to dsn and checks that dlq_replay_history exists.
// With lock it also takes the replay advisory lock, and fails when another
// tracked replay holds it. The DSN never appears in its errors.
func OpenHistory(ctx context.Context, dsn string, lock bool) (*History, error) {
	// POSTGRES_SSL_MODE and POSTGRES_SSL_CA_FILE win over the DSN's own TLS
	// settings, as in the projector (spec 11.1).
	dsn, err := config.ApplyPostgresSSL(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "connect"},
			EnvDBURL+" is not a valid PostgreSQL URL", nil)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, dbErr("connect", err)
	}
	h := &History{conn: conn}
	var table pgtype.Text
	if err := conn.QueryRow(ctx, `SELECT to_regclass('dlq_replay_history')::text`).Scan(&table); err != nil {
		h.Close()
		return nil, dbErr("check_schema", err)
	}
	if !table.Valid {
		h.Close()
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "check_schema", Target: "dlq_replay_history"},
			"table dlq_replay_history does not exist in this database: projector-effect creates it with its migrations (000003) at start-up", nil)
	}
	if lock {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, replayLockKey).Scan(&got); err != nil {
			h.Close()
			return nil, dbErr("lock", err)
		}
		if !got {
			h.Close()
			return nil, infraerr.New(infraerr.KindUnavailable, infraerr.Context{Transport: infraerr.TransportDB, Operation: "lock", Target: "dlq_replay_history"},
				"another tracked DLQ replay is running against this database; wait for it to finish", nil)
		}
		h.locked = true
	}
	return h, nil
}

// Close releases the lock and the connection.
func (h *History) Close() {
	ctx := context.Background()
	if h.locked {
		_, _ = h.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, replayLockKey)
	}
	_ = h.conn.Close(ctx)
}

// Handled implements replay.Tracker: the first COMPLETED or QUARANTINED row
// of the same dead letter (original_message_id = Entry.ID, same DLQ
// partition and offset).
func (h *History) Handled(ctx context.Context, e *replay.Entry) (replay.Status, bool, error) {
	var st string
	err := h.conn.QueryRow(ctx, `SELECT replay_status FROM dlq_replay_history
		WHERE original_message_id = $1 AND dlq_partition = $2 AND dlq_offset = $3 AND replay_status IN ('COMPLETED', 'QUARANTINED')
		ORDER BY replay_timestamp LIMIT 1`, e.ID(), e.Partition, e.Offset).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, dbErr("lookup", err)
	}
	return replay.Status(st), true, nil
}

func nullText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// Record implements replay.Tracker.
func (h *History) Record(ctx context.Context, r replay.HistoryRow) error {
	_, err := h.conn.Exec(ctx, `INSERT INTO dlq_replay_history
		(id, original_message_id, replay_correlation_id, original_topic, target_topic, replay_status,
		 replay_timestamp, success, error_message, dlq_offset, dlq_partition, retry_count)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.ID, r.OriginalMessageID, r.ReplayCorrelationID, nullText(r.OriginalTopic), nullText(r.TargetTopic), string(r.Status),
		r.Timestamp, r.Success, nullText(r.ErrorMessage), r.DLQOffset, r.DLQPartition, r.RetryCount)
	if err != nil {
		return dbErr("insert", err)
	}
	return nil
}

// Rows returns the rows of one run, oldest first (for tests and audits).
func (h *History) Rows(ctx context.Context, runID uuid.UUID) ([]replay.HistoryRow, error) {
	rows, err := h.conn.Query(ctx, `SELECT id, original_message_id, replay_correlation_id, coalesce(original_topic, ''), coalesce(target_topic, ''),
		replay_status, replay_timestamp, success, coalesce(error_message, ''), dlq_offset, dlq_partition, retry_count
		FROM dlq_replay_history WHERE replay_correlation_id = $1 ORDER BY replay_timestamp, dlq_partition, dlq_offset`, runID)
	if err != nil {
		return nil, dbErr("query", err)
	}
	defer rows.Close()
	var out []replay.HistoryRow
	for rows.Next() {
		var r replay.HistoryRow
		var st string
		if err := rows.Scan(&r.ID, &r.OriginalMessageID, &r.ReplayCorrelationID, &r.OriginalTopic, &r.TargetTopic, &st,
			&r.Timestamp, &r.Success, &r.ErrorMessage, &r.DLQOffset, &r.DLQPartition, &r.RetryCount); err != nil {
			return nil, dbErr("query", err)
		}
		r.Status = replay.Status(st)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("query", err)
	}
	return out, nil
}

// rootCause follows single and joined (last one) wrapping to the innermost
// error.
func rootCause(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err
			}
			err = errs[len(errs)-1]
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err
			}
			err = next
		default:
			return err
		}
	}
}
