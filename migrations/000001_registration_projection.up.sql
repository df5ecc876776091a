-- Registration projection, per spec section 5 (Python migrations 001, 002,
-- 003/004, 049 and 078 folded into one step for a fresh database).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'registration_state') THEN
        CREATE TYPE registration_state AS ENUM (
            'pending_registration', 'accepted', 'awaiting_ack', 'rejected',
            'ack_timed_out', 'ack_received', 'active', 'liveness_expired');
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS registration_projections (
    entity_id                   UUID               NOT NULL,
    domain                      VARCHAR(128)       NOT NULL DEFAULT 'registration',
    current_state               registration_state NOT NULL,
    node_type                   VARCHAR(64)        NOT NULL,
    node_version                VARCHAR(32)        NOT NULL DEFAULT '1.0.0',
    capabilities                JSONB              NOT NULL DEFAULT '{}',
    ack_deadline                TIMESTAMPTZ,
    liveness_deadline           TIMESTAMPTZ,
    last_heartbeat_at           TIMESTAMPTZ,
    ack_timeout_emitted_at      TIMESTAMPTZ,
    liveness_timeout_emitted_at TIMESTAMPTZ,
    last_applied_event_id       UUID               NOT NULL,
    last_applied_offset         BIGINT             NOT NULL DEFAULT 0,
    last_applied_sequence       BIGINT,
    last_applied_partition      VARCHAR(128),
    registered_at               TIMESTAMPTZ        NOT NULL,
    updated_at                  TIMESTAMPTZ        NOT NULL,
    correlation_id              UUID,
    contract_type               TEXT,
    intent_types                TEXT[]             DEFAULT ARRAY[]::TEXT[],
    protocols                   TEXT[]             DEFAULT ARRAY[]::TEXT[],
    capability_tags             TEXT[]             DEFAULT ARRAY[]::TEXT[],
    contract_version            TEXT,
    subscribe_topics            JSONB              NOT NULL DEFAULT '[]',
    publish_topics              JSONB              NOT NULL DEFAULT '[]',
    data_provenance             TEXT               NOT NULL DEFAULT 'unknown',
    PRIMARY KEY (entity_id, domain),
    CONSTRAINT registration_projections_entity_id_key UNIQUE (entity_id),
    CONSTRAINT valid_offset CHECK (last_applied_offset >= 0),
    CONSTRAINT valid_sequence CHECK (last_applied_sequence IS NULL OR last_applied_sequence >= 0),
    CONSTRAINT valid_node_type CHECK (node_type IN ('effect', 'compute', 'reducer', 'orchestrator')),
    CONSTRAINT valid_contract_type CHECK (contract_type IS NULL OR contract_type IN ('effect', 'compute', 'reducer', 'orchestrator', 'unknown')),
    CONSTRAINT chk_registration_projections_data_provenance CHECK (data_provenance IN ('demo_seeded', 'demo_projected_shortcut', 'measured', 'estimated', 'unknown'))
);

CREATE INDEX IF NOT EXISTS idx_registration_ack_deadline ON registration_projections (ack_deadline) WHERE ack_deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_registration_liveness_deadline ON registration_projections (liveness_deadline) WHERE liveness_deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_registration_current_state ON registration_projections (current_state);
CREATE INDEX IF NOT EXISTS idx_registration_domain_state ON registration_projections (domain, current_state);
CREATE INDEX IF NOT EXISTS idx_registration_last_event_id ON registration_projections (last_applied_event_id);
CREATE INDEX IF NOT EXISTS idx_registration_capabilities ON registration_projections USING GIN (capabilities);
CREATE INDEX IF NOT EXISTS idx_registration_ack_timeout_scan ON registration_projections (ack_deadline, ack_timeout_emitted_at)
    WHERE ack_deadline IS NOT NULL AND ack_timeout_emitted_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_registration_liveness_timeout_scan ON registration_projections (current_state, liveness_deadline, liveness_timeout_emitted_at)
    WHERE current_state = 'active' AND liveness_deadline IS NOT NULL AND liveness_timeout_emitted_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_registration_updated_at ON registration_projections (updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_registration_state_updated_at ON registration_projections (current_state, updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_registration_capability_tags ON registration_projections USING GIN (capability_tags);
CREATE INDEX IF NOT EXISTS idx_registration_intent_types ON registration_projections USING GIN (intent_types);
CREATE INDEX IF NOT EXISTS idx_registration_protocols ON registration_projections USING GIN (protocols);
CREATE INDEX IF NOT EXISTS idx_registration_contract_type_state ON registration_projections (contract_type, current_state);
CREATE INDEX IF NOT EXISTS idx_registration_projections_subscribe_topics ON registration_projections USING GIN (subscribe_topics);
CREATE INDEX IF NOT EXISTS idx_registration_projections_publish_topics ON registration_projections USING GIN (publish_topics);
