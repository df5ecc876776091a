-- Columns the Go fleet adds beyond the Python schema (docs/architecture.md):
-- the node's name and endpoints, so the registry API and a snapshot rebuild
-- have everything the reducer knows about a node.
-- last_applied_sequence (already in the Python schema, never written there)
-- carries the reducer's per-node sequence number: the projector's guard
-- against replayed or reordered intents.
ALTER TABLE registration_projections ADD COLUMN IF NOT EXISTS node_name TEXT;
ALTER TABLE registration_projections ADD COLUMN IF NOT EXISTS endpoints JSONB NOT NULL DEFAULT '{}';
