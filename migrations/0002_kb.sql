-- The knowledge base: documents, their chunks (full text and embeddings), and the queue of
-- chunks waiting for the embedding worker.

CREATE TABLE kb_documents (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL,
    title        text        NOT NULL,
    scope        text        NOT NULL,
    format       text        NOT NULL CHECK (format IN ('markdown', 'text')),
    metadata     jsonb       NOT NULL DEFAULT '{}',
    content      text        NOT NULL,
    -- SHA-256 of the normalised content: re-ingesting the same text into the same scope
    -- returns the existing document.
    content_hash text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    chunk_count  integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, scope, content_hash)
);

CREATE TABLE kb_chunks (
    id          bigserial   PRIMARY KEY,
    document_id uuid        NOT NULL REFERENCES kb_documents (id) ON DELETE CASCADE,
    -- Copied from the document so filters run inside the index scans.
    tenant_id   text        NOT NULL,
    scope       text        NOT NULL,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    ordinal     integer     NOT NULL,
    -- "Title > Section > Subsection": cited, and embedded with the text.
    heading     text        NOT NULL DEFAULT '',
    content     text        NOT NULL,
    token_count integer     NOT NULL,
    tsv         tsvector    GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', heading), 'B') ||
                    setweight(to_tsvector('english', content), 'A')) STORED,
    -- NULL until embedded (inline at ingest, or by the worker).
    embedding   vector(384),
    UNIQUE (document_id, ordinal)
);

CREATE INDEX kb_chunks_embedding ON kb_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX kb_chunks_tsv ON kb_chunks USING gin (tsv);
CREATE INDEX kb_chunks_tenant_scope ON kb_chunks (tenant_id, scope);
CREATE INDEX kb_documents_tenant ON kb_documents (tenant_id, created_at DESC);

-- Chunks waiting for the embedding worker. A worker claims rows with
-- FOR UPDATE SKIP LOCKED and a lease; a lease that runs out makes the row claimable again.
CREATE TABLE embedding_jobs (
    id           bigserial   PRIMARY KEY,
    chunk_id     bigint      NOT NULL UNIQUE REFERENCES kb_chunks (id) ON DELETE CASCADE,
    document_id  uuid        NOT NULL REFERENCES kb_documents (id) ON DELETE CASCADE,
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    leased_until timestamptz,
    worker       text,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX embedding_jobs_claimable ON embedding_jobs (id) WHERE status IN ('pending', 'running');
