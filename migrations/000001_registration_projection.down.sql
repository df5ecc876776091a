DROP TABLE IF EXISTS registration_projections;
DROP TYPE IF EXISTS registration_state;
