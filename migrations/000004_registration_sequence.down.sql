ALTER TABLE registration_projections DROP CONSTRAINT IF EXISTS valid_registration_sequence;
ALTER TABLE registration_projections DROP COLUMN IF EXISTS registration_sequence;
