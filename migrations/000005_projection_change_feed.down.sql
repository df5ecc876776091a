DROP TRIGGER IF EXISTS trg_registration_projections_notify_change ON registration_projections;
DROP TRIGGER IF EXISTS trg_registration_projections_stamp_change ON registration_projections;
DROP FUNCTION IF EXISTS registration_projections_notify_change();
DROP FUNCTION IF EXISTS registration_projections_stamp_change();
DROP INDEX IF EXISTS idx_registration_change_xid;
ALTER TABLE registration_projections DROP COLUMN IF EXISTS change_xid;
