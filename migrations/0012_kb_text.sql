-- Okapi BM25 for the knowledge base's text side (issue 18): the collection statistics it
-- needs, kept per tenant and updated in the same transaction as the chunks they count.
-- The search scores only candidates the GIN index on kb_chunks.tsv yields; these tables give
-- each query term's document frequency and the tenant's average chunk length.

-- A tsvector's length in tokens (every position of every lexeme), the "document length" of
-- BM25. A lexeme stored without positions counts once.
CREATE FUNCTION kb_tsv_length(tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)::integer
          FROM unnest($1) AS u $$;

-- Each chunk's length, stored: computing it from the tsvector for every candidate of a
-- search would cost more than the scoring (the same expression as kb_chunks.tsv, which a
-- generated column cannot reference).
ALTER TABLE kb_chunks ADD COLUMN text_length integer GENERATED ALWAYS AS (
    kb_tsv_length(setweight(to_tsvector('english', heading), 'B') ||
                  setweight(to_tsvector('english', content), 'A'))) STORED;

-- Chunks and their total length, per tenant.
CREATE TABLE kb_text_stats (
    tenant_id    text   PRIMARY KEY,
    chunks       bigint NOT NULL,
    total_length bigint NOT NULL
);

-- How many of a tenant's chunks contain each lexeme.
CREATE TABLE kb_term_stats (
    tenant_id text    NOT NULL,
    lexeme    text    NOT NULL,
    chunks    integer NOT NULL,
    PRIMARY KEY (tenant_id, lexeme)
);

-- Adds `sign` (1 or -1) times the given chunks to the statistics. Rows are upserted in key
-- order, so concurrent ingests and deletes of one tenant lock them in the same order.
CREATE FUNCTION kb_text_stats_add(
    rows_tenant text[], rows_tsv tsvector[], rows_length integer[], sign integer)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO kb_text_stats AS s (tenant_id, chunks, total_length)
    SELECT r.tenant_id, sign * count(*), sign * sum(r.length)
    FROM unnest(rows_tenant, rows_length) AS r(tenant_id, length)
    GROUP BY r.tenant_id ORDER BY r.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE
        SET chunks = s.chunks + excluded.chunks,
            total_length = s.total_length + excluded.total_length;
    INSERT INTO kb_term_stats AS t (tenant_id, lexeme, chunks)
    SELECT r.tenant_id, u.lexeme, sign * count(*)
    FROM unnest(rows_tenant, rows_tsv) AS r(tenant_id, tsv), unnest(r.tsv) AS u
    GROUP BY r.tenant_id, u.lexeme ORDER BY r.tenant_id, u.lexeme
    ON CONFLICT (tenant_id, lexeme) DO UPDATE SET chunks = t.chunks + excluded.chunks;
$$;

CREATE FUNCTION kb_chunks_text_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM kb_text_stats_add(
            (SELECT array_agg(tenant_id) FROM new_rows), (SELECT array_agg(tsv) FROM new_rows),
            (SELECT array_agg(text_length) FROM new_rows), 1);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM kb_text_stats_add(
            (SELECT array_agg(tenant_id) FROM old_rows), (SELECT array_agg(tsv) FROM old_rows),
            (SELECT array_agg(text_length) FROM old_rows), -1);
    ELSE
        -- Updates (the worker storing embeddings) rarely change the text: only rows whose
        -- tsvector or tenant changed count.
        PERFORM kb_text_stats_add(
            (SELECT array_agg(o.tenant_id) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            (SELECT array_agg(o.tsv) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            (SELECT array_agg(o.text_length) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            -1);
        PERFORM kb_text_stats_add(
            (SELECT array_agg(n.tenant_id) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            (SELECT array_agg(n.tsv) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            (SELECT array_agg(n.text_length) FROM old_rows o JOIN new_rows n USING (id)
             WHERE o.tsv IS DISTINCT FROM n.tsv OR o.tenant_id IS DISTINCT FROM n.tenant_id),
            1);
    END IF;
    RETURN NULL;
END $$;

-- Statement-level with transition tables: one pass over all the rows a statement touched
-- (an ingest inserts every chunk in one statement).
CREATE TRIGGER kb_chunks_text_stats_insert AFTER INSERT ON kb_chunks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunks_text_stats();
CREATE TRIGGER kb_chunks_text_stats_delete AFTER DELETE ON kb_chunks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunks_text_stats();
CREATE TRIGGER kb_chunks_text_stats_update AFTER UPDATE ON kb_chunks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunks_text_stats();

-- Chunks stored before this migration.
SELECT kb_text_stats_add(array_agg(tenant_id), array_agg(tsv), array_agg(text_length), 1)
FROM kb_chunks;
