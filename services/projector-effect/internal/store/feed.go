package store

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Position is a place in the change feed: rows are ordered by the
// transaction that last wrote them (change_xid), then by entity_id.
type Position struct {
	XID    uint64
	NodeID uuid.UUID
}

// Horizon returns the xmin of a fresh snapshot: every transaction with a
// smaller id has ended, so no row can later be written with a change_xid
// below it.
func (s *Store) Horizon(ctx context.Context) (uint64, error) {
	var h string
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&h); err != nil {
		return 0, Classify("horizon", err)
	}
	x, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return 0, Classify("horizon", err)
	}
	return x, nil
}

// Changes returns up to limit rows positioned after pos, in feed order, and
// the horizon of the snapshot they were read in. Rows whose change_xid is
// below that horizon can never change behind pos again.
func (s *Store) Changes(ctx context.Context, pos Position, limit int) ([]*Row, uint64, error) {
	var (
		out     []*Row
		horizon uint64
	)
	// One read-only repeatable-read transaction: the horizon and the rows
	// come from the same snapshot.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var h string
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&h); err != nil {
			return err
		}
		var err error
		if horizon, err = strconv.ParseUint(h, 10, 64); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+rowCols+` FROM `+Table+`
WHERE domain = $1 AND (change_xid, entity_id) > ($2::text::xid8, $3)
ORDER BY change_xid, entity_id
LIMIT $4`, Domain, strconv.FormatUint(pos.XID, 10), pos.NodeID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, Classify("changes", err)
	}
	return out, horizon, nil
}

// Channel is the notification channel the projection's statement trigger
// signals after every write (migration 000005).
const Channel = "onex_registration_projections"

// Notifier holds one LISTEN connection and wakes every waiter when the
// projection changed. It is safe for concurrent use.
type Notifier struct {
	dsn string
	log *slog.Logger

	mu   sync.Mutex
	wake chan struct{}
}

// NewNotifier returns a notifier that connects with dsn once Run starts.
func NewNotifier(dsn string, log *slog.Logger) *Notifier {
	return &Notifier{dsn: dsn, log: log, wake: make(chan struct{})}
}

// Changed returns a channel closed at the next change notification (or
// reconnect of the listener, when notifications may have been missed).
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wake
}

func (n *Notifier) fire() {
	n.mu.Lock()
	close(n.wake)
	n.wake = make(chan struct{})
	n.mu.Unlock()
}

// Run listens until ctx ends, reconnecting after failures. Waiters do not
// depend on it for correctness (they poll too); it only makes changes show
// up at once.
func (n *Notifier) Run(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := n.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n.log.Warn("change listener reconnecting", "error", infraerr.SanitizeError(Classify("listen", err)))
		t := time.NewTimer(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

func (n *Notifier) listen(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, n.dsn)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// Anything written while the listener was away is picked up by the
	// waiters' next poll.
	n.fire()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		n.fire()
	}
}
