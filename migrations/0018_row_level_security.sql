-- Tenant isolation in depth (issue 16, docs/adr/0018-row-level-security.md). Every query of
-- the components already says `WHERE tenant_id = …`; row-level security makes a query that
-- forgets it see (and write) only the rows of the tenant its connection was opened for.
--
-- The components connect as a role that is a member of `tessera_app` (not the owner of the
-- tables, not a superuser, no BYPASSRLS) and name their tenant once per connection:
--   SELECT set_config('tessera.tenant', '<tenant>', false)
-- Work that spans tenants by design (cron sweeps, the alert dispatcher, looking up an API key
-- by its prefix) names the scope '*'. A connection that names nothing sees no tenant's rows.
-- The migrator (the tables' owner) is not subject to the policies: RLS is enabled, not forced.

-- The group role the application's login role belongs to. Creating it needs CREATEROLE; a
-- managed database whose owner lacks it gets a notice, and an operator creates the role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tessera_app') THEN
        BEGIN
            CREATE ROLE tessera_app NOLOGIN;
        EXCEPTION
            -- Another database's migration on the same server created it a moment ago.
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role tessera_app (no CREATEROLE): create it and run the GRANTs below as in docs/deploy-spinkube.md';
        END;
    END IF;
END $$;

-- The self-check component's tables, made here so the application role needs no DDL.
CREATE TABLE IF NOT EXISTS roundtrip_values (
    id          bigserial PRIMARY KEY,
    v_int32     integer,
    v_int64     bigint,
    v_float64   double precision,
    v_text      text,
    v_bool      boolean,
    v_jsonb     jsonb,
    v_uuid      uuid,
    v_timestamp timestamptz,
    v_null      text
);
CREATE TABLE IF NOT EXISTS roundtrip_vectors (
    id        bigserial PRIMARY KEY,
    embedding vector(384) NOT NULL
);

-- One policy on every table with a tenant_id column. A test (tests/tenancy.rs) fails when a
-- later migration adds a tenant table without one.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I
                 USING (tenant_id = current_setting(''tessera.tenant'', true)
                        OR current_setting(''tessera.tenant'', true) = ''*'')
                 WITH CHECK (tenant_id = current_setting(''tessera.tenant'', true)
                        OR current_setting(''tessera.tenant'', true) = ''*'')',
            t);
    END LOOP;
END $$;

-- Full-text candidates of the connection's tenant. `tsv @@ query` is not leakproof, so under
-- RLS Postgres may not use the GIN index for it (it must apply the policy first) and would
-- scan every chunk of the tenant; run as the owner, this function uses the index and applies
-- the tenant itself. It answers the columns the kb's scoring and filters read, so nothing is
-- joined back (measured in docs/adr/0018).
CREATE FUNCTION kb_text_matches(query tsquery)
    RETURNS TABLE (id bigint, tenant_id text, scope text, metadata jsonb, text_length integer,
                   tsv tsvector)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT k.id, k.tenant_id, k.scope, k.metadata, k.text_length, k.tsv
    FROM public.kb_chunks k
    WHERE k.tenant_id = current_setting('tessera.tenant', true) AND k.tsv @@ query
$$;
REVOKE ALL ON FUNCTION kb_text_matches(tsquery) FROM PUBLIC;

-- What the application role may do: read and write rows, never DDL; the audit log and the
-- migration record it may only read (and the audit log append to).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tessera_app') THEN
        GRANT USAGE ON SCHEMA public TO tessera_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tessera_app;
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO tessera_app;
        GRANT EXECUTE ON FUNCTION kb_text_matches(tsquery) TO tessera_app;
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM tessera_app;
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tessera_migrations FROM tessera_app;
        -- Tables and sequences of later migrations (made by this same owner).
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tessera_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO tessera_app;
    END IF;
END $$;
