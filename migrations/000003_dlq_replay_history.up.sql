-- DLQ replay tracking, per spec section 5.6.
CREATE TABLE IF NOT EXISTS dlq_replay_history (
    id                    UUID PRIMARY KEY,
    original_message_id   UUID         NOT NULL,
    replay_correlation_id UUID         NOT NULL,
    original_topic        VARCHAR(255),
    target_topic          VARCHAR(255),
    replay_status         VARCHAR(50),
    replay_timestamp      TIMESTAMPTZ  DEFAULT now(),
    success               BOOLEAN,
    error_message         TEXT,
    dlq_offset            BIGINT,
    dlq_partition         INTEGER,
    retry_count           INTEGER      DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_dlq_replay_original_message_id ON dlq_replay_history (original_message_id);
CREATE INDEX IF NOT EXISTS idx_dlq_replay_timestamp ON dlq_replay_history (replay_timestamp);
