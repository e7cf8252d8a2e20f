-- Full-text candidates, bounded inside the function (issue 18, item 2). The function of
-- 0018 answered every chunk of the tenant containing a query word; a SECURITY DEFINER
-- function is not inlined, so all of them (tsvectors included) were materialised before the
-- caller's LIMIT, and a common word cost tens of milliseconds at 100k chunks. The search's
-- scope and metadata filters come in too, so the bound counts only chunks the search may
-- return. NULL means "no such filter".
CREATE FUNCTION kb_text_matches(query tsquery, max_rows integer, scopes text[], filter jsonb)
    RETURNS TABLE (id bigint, tenant_id text, scope text, metadata jsonb, text_length integer,
                   tsv tsvector)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT k.id, k.tenant_id, k.scope, k.metadata, k.text_length, k.tsv
    FROM public.kb_chunks k
    WHERE k.tenant_id = current_setting('tessera.tenant', true) AND k.tsv @@ query
      AND (scopes IS NULL OR k.scope = ANY(scopes))
      AND (filter IS NULL OR k.metadata @> filter)
    LIMIT max_rows
$$;
REVOKE ALL ON FUNCTION kb_text_matches(tsquery, integer, text[], jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tessera_app') THEN
        GRANT EXECUTE ON FUNCTION kb_text_matches(tsquery, integer, text[], jsonb) TO tessera_app;
    END IF;
END $$;
DROP FUNCTION kb_text_matches(tsquery);
