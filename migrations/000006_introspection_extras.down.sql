ALTER TABLE registration_projections DROP COLUMN IF EXISTS introspection_extras;
