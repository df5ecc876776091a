ALTER TABLE registration_projections DROP COLUMN IF EXISTS endpoints;
ALTER TABLE registration_projections DROP COLUMN IF EXISTS node_name;
