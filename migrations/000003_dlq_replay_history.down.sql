DROP TABLE IF EXISTS dlq_replay_history;
