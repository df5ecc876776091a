-- Change feed of the registry's WatchNodes (docs/projector.md).
--
-- change_xid is the id of the transaction that last wrote the row. A watcher
-- reads the rows with change_xid >= its cursor, then moves the cursor to the
-- xmin of the snapshot it read with: every transaction below that xmin has
-- ended, so no row can later appear behind the cursor. (updated_at cannot be
-- a cursor: it is the reducer's decision time, carried by the intent, and
-- intents of different nodes commit in any order.)
ALTER TABLE registration_projections ADD COLUMN IF NOT EXISTS change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS idx_registration_change_xid ON registration_projections (change_xid);

CREATE OR REPLACE FUNCTION registration_projections_stamp_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

-- A statement-level notification only wakes watchers up (it carries no
-- payload: PostgreSQL folds identical notifications of one transaction into
-- one, so a batch of a thousand heartbeats notifies once).
CREATE OR REPLACE FUNCTION registration_projections_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('onex_registration_projections', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS trg_registration_projections_stamp_change ON registration_projections;
CREATE TRIGGER trg_registration_projections_stamp_change
    BEFORE INSERT OR UPDATE ON registration_projections
    FOR EACH ROW EXECUTE FUNCTION registration_projections_stamp_change();

DROP TRIGGER IF EXISTS trg_registration_projections_notify_change ON registration_projections;
CREATE TRIGGER trg_registration_projections_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON registration_projections
    FOR EACH STATEMENT EXECUTE FUNCTION registration_projections_notify_change();
