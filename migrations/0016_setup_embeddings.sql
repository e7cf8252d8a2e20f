-- Migration 0016: embeddings of candidate setups (issue 13, discovery speed).
-- The FuzzyPicker compares its best candidates' setups with past trades by embedding each
-- setup's text (tessera-picking's `candidate_description`) with MiniLM in the component.
-- The model is deterministic, so the vector of a text is computed once and kept here for
-- every instance and host: a run whose setups were embedded before (the cron's runs on one
-- data day, a manual run after them) reads them in one query and loads no model. Keyed by
-- the SHA-256 of the model's name and the text; rows older than a week are pruned by the
-- run that writes new ones, so a tenant holds about 20 rows per data day of recent runs.
CREATE TABLE setup_embeddings (
    tenant_id  text        NOT NULL,
    text_hash  bytea       NOT NULL,
    embedding  vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, text_hash)
);
