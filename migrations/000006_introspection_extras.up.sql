-- The members of a node's introspection that the fleet does not know (a
-- Python node newer than the registry; docs/interop.md): a JSON object whose
-- keys are JSON paths relative to the introspection payload ("flow_window",
-- "declared_capabilities.new_thing") and whose values are the members' JSON.
-- Every upsert (a registration) replaces it: {} when the introspection had
-- none. Updates (ack, heartbeats, timeouts) never touch it.
ALTER TABLE registration_projections ADD COLUMN IF NOT EXISTS introspection_extras JSONB NOT NULL DEFAULT '{}';
