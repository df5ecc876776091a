-- The projector's second sequence guard (docs/projector.md): the reducer
-- sequence of the newest upsert applied to the row. It guards the static
-- columns that only upserts write (node type, version, capabilities,
-- endpoints, name, registration time, attempt, correlation, contract
-- fields), while last_applied_sequence guards the mutable ones (state,
-- deadlines, heartbeat, markers, updated_at). With both, intents commute: an
-- update that arrives before its upsert creates the row with
-- registration_sequence 0, and the late upsert still fills the static columns.
ALTER TABLE registration_projections ADD COLUMN IF NOT EXISTS registration_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registration_projections DROP CONSTRAINT IF EXISTS valid_registration_sequence;
ALTER TABLE registration_projections ADD CONSTRAINT valid_registration_sequence CHECK (registration_sequence >= 0);
