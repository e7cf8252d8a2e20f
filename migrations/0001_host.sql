-- What the host itself needs: pgvector for every capability's embeddings, and the table
-- behind Spin's default key-value store.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE spin_key_value (
    store text  NOT NULL,
    key   text  NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (store, key)
);
