-- The knowledge base's generation per tenant (docs/adr/0020): a counter every change to the
-- tenant's chunks bumps — ingest, delete, a promoted correction, an embedding the worker
-- wrote later. A whole chat turn is stored in the response cache under a key that holds the
-- generation it searched, so a turn asked again after any change runs afresh.

CREATE TABLE kb_generations (
    tenant_id  text   PRIMARY KEY,
    generation bigint NOT NULL
);

ALTER TABLE kb_generations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON kb_generations
    USING (tenant_id = current_setting('tessera.tenant', true)
           OR current_setting('tessera.tenant', true) = '*')
    WITH CHECK (tenant_id = current_setting('tessera.tenant', true)
           OR current_setting('tessera.tenant', true) = '*');

-- Statement-level: one upsert per statement and tenant, whatever the row count. The rows are
-- upserted in key order, so concurrent statements of several tenants lock them in the same
-- order. An ingest already holds its tenant's kb_text_stats row until it commits, so this
-- adds no wait between ingests.
CREATE FUNCTION kb_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kb_generations AS g (tenant_id, generation)
    SELECT DISTINCT tenant_id, 1 FROM changed_chunks ORDER BY tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER kb_chunks_inserted AFTER INSERT ON kb_chunks
    REFERENCING NEW TABLE AS changed_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION kb_bump_generation();
CREATE TRIGGER kb_chunks_updated AFTER UPDATE ON kb_chunks
    REFERENCING NEW TABLE AS changed_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION kb_bump_generation();
CREATE TRIGGER kb_chunks_deleted AFTER DELETE ON kb_chunks
    REFERENCING OLD TABLE AS changed_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION kb_bump_generation();
