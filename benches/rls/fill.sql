-- benches/rls: 2 tenants x 10,000 chunks of 40 words from a 2,000-word vocabulary
-- (Zipf-like: word i drawn with probability ~ i^(-2/3)), in a database migrated by
-- `tessera migrate`. See benches/README.md, "Row-level security".
CREATE TEMP TABLE vocab AS SELECT ARRAY(SELECT 'w' || substr(md5(i::text), 1, 8) FROM generate_series(1, 2000) i) AS words;
INSERT INTO kb_documents (tenant_id, title, scope, format, content, content_hash, status)
SELECT t, 'doc ' || t, 'docs', 'text', '', md5(t), 'ready' FROM unnest(ARRAY['acme','globex']) t ON CONFLICT DO NOTHING;
INSERT INTO kb_chunks (document_id, tenant_id, scope, ordinal, content, token_count)
SELECT d.id, d.tenant_id, 'docs', n,
       (SELECT string_agg(vocab.words[1 + floor(1999 * power(random(), 3))::int+ 0 * k + 0 * n], ' ')
          FROM generate_series(1, 40) k),
       40
FROM kb_documents d, generate_series(1, 10000) n, vocab;
ANALYZE kb_chunks;
