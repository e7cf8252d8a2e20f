//! Tenant isolation in depth (issue 16, migrations/0018, docs/adr/0018-row-level-security.md):
//! besides the `WHERE tenant_id = …` of every query, Postgres row-level security on every
//! tenant table. The chat and feedback blocks of the repository's spin.toml run on the real
//! host as the application role; then queries that forget the tenant filter are run as that
//! role, the way a buggy component would, and find only the tenant their connection named.

use serde_json::json;
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, TempDir, TestDb, TestHost};

const A: &str = "acme";
const B: &str = "globex";

/// The manifest's head and the chat block, paths made absolute.
fn manifest() -> String {
    let root = tessera_e2e::root();
    let full = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let head = &full[..full.find("[[trigger.").expect("spin.toml has triggers")];
    let body = &full[head.len()..];
    let start = body
        .find("\n# chat:")
        .expect("spin.toml has the chat block");
    let rest = &body[start + 1..];
    let end = rest.find("\n\n#").map_or(rest.len(), |i| i + 1);
    format!("{head}\n{}", &rest[..end]).replace(
        "source = \"target/",
        &format!("source = \"{}/target/", root.display()),
    )
}

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest()).unwrap();
    HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

fn create_conversation(host: &TestHost, tenant: &str, title: &str) -> String {
    let r = Request::new("POST", "/v1/chat/conversations")
        .header("x-tenant-id", tenant)
        .header("x-user-id", "alice")
        .json(&json!({ "title": title }))
        .send(host.addr())
        .expect("create a conversation");
    assert_eq!(r.status, 201, "{}", r.describe());
    r.json()["id"].as_str().unwrap().to_string()
}

fn count(db: &TestDb, tenant: Option<&str>, sql: &str) -> i64 {
    let rows = db
        .query_as_app(tenant, sql)
        .unwrap_or_else(|e| panic!("{sql} as tenant {tenant:?}: {e}"));
    rows[0].get(0)
}

#[test]
fn a_query_that_forgets_the_tenant_finds_only_its_connections_tenant() {
    let db = TestDb::new();
    let dir = TempDir::new("tenancy");
    let host = host(&db, &dir);

    // Written through the component, as the application role under the policies.
    let a = create_conversation(&host, A, "acme's");
    let b = create_conversation(&host, B, "globex's");
    create_conversation(&host, B, "globex's second");

    // The owner (migrations, checks) sees everything: row-level security is not forced.
    let all: i64 = db.query("SELECT count(*) FROM conversations").unwrap()[0].get(0);
    assert_eq!(all, 3);

    // No WHERE tenant_id: each connection still sees only the tenant it named.
    let forgetful = "SELECT count(*) FROM conversations";
    assert_eq!(count(&db, Some(A), forgetful), 1);
    assert_eq!(count(&db, Some(B), forgetful), 2);
    // A connection that names no tenant sees no tenant's rows.
    assert_eq!(count(&db, None, forgetful), 0);
    // Work across tenants by design (cron sweeps, the dispatcher) names '*'.
    assert_eq!(count(&db, Some("*"), forgetful), 3);

    // Another tenant's row by its id, as a lookup that forgot the tenant would read it.
    let by_id = |id: &str| format!("SELECT count(*) FROM conversations WHERE id = '{id}'");
    assert_eq!(count(&db, Some(A), &by_id(&b)), 0);
    assert_eq!(count(&db, Some(A), &by_id(&a)), 1);

    // Writing another tenant's row is refused, not silently stored.
    let err = db
        .query_as_app(
            Some(A),
            &format!(
                "INSERT INTO conversations (tenant_id, user_id, title) VALUES ('{B}', 'mallory', 'x')"
            ),
        )
        .unwrap_err();
    assert!(err.contains("row-level security"), "{err}");
    // Nor can an update move a row out of the tenant, or touch another tenant's.
    let err = db
        .query_as_app(
            Some(A),
            &format!("UPDATE conversations SET tenant_id = '{B}' WHERE id = '{a}'"),
        )
        .unwrap_err();
    assert!(err.contains("row-level security"), "{err}");
    let touched = db
        .query_as_app(
            Some(A),
            &format!("WITH u AS (UPDATE conversations SET title = 'mine' WHERE id = '{b}' RETURNING 1) SELECT count(*) FROM u"),
        )
        .unwrap();
    assert_eq!(touched[0].get::<_, i64>(0), 0);
    let title: String = db
        .query(&format!("SELECT title FROM conversations WHERE id = '{b}'"))
        .unwrap()[0]
        .get(0);
    assert_eq!(title, "globex's");
}

#[test]
fn every_tenant_table_has_the_policy_and_the_application_role_runs_no_ddl() {
    let db = TestDb::new();
    let dir = TempDir::new("tenancy");
    let _host = host(&db, &dir);

    // Every table with a tenant_id column, including those of later migrations.
    let unprotected: Vec<String> = db
        .query(
            "SELECT c.relname
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                                AND NOT a.attisdropped
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND (NOT c.relrowsecurity
                    OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
             ORDER BY 1",
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        unprotected.is_empty(),
        "tenant tables without row-level security: {unprotected:?}"
    );
    let protected: i64 = db
        .query("SELECT count(*) FROM pg_class WHERE relrowsecurity")
        .unwrap()[0]
        .get(0);
    assert!(
        protected >= 40,
        "{protected} tables under row-level security"
    );

    // The application role reads and writes rows; it does not change the schema, and the
    // audit log is append-only to it.
    let ddl = db
        .query_as_app(Some(A), "CREATE TABLE sneaky (id int)")
        .unwrap_err();
    assert!(ddl.contains("permission denied"), "{ddl}");
    db.query_as_app(
        Some(A),
        "INSERT INTO audit_log (tenant_id, role, method, route, status)
         VALUES ('acme', 'admin', 'POST', '/v1/x', 201)",
    )
    .unwrap();
    let erase = db
        .query_as_app(Some(A), "DELETE FROM audit_log")
        .unwrap_err();
    assert!(erase.contains("permission denied"), "{erase}");
    let superuser: bool = db
        .query_as_app(
            None,
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .unwrap()[0]
        .get(0);
    assert!(
        !superuser,
        "the application role must be subject to row-level security"
    );
}

/// The kb's full-text candidates (migrations/0020, docs/adr/0021): `kb_text_matches` answers
/// only the connection's tenant's chunks, applies the search's scope and metadata filters,
/// and only then its bound, so a bound never fills up with rows the search may not return.
#[test]
fn text_candidates_are_the_tenants_within_the_filters_then_bounded() {
    let db = TestDb::new();
    let dir = TempDir::new("tenancy-kb");
    let _host = host(&db, &dir); // applies the migrations
    db.execute(
        "INSERT INTO kb_documents (id, tenant_id, title, scope, format, content, content_hash, status)
         VALUES ('00000000-0000-0000-0000-00000000000a', 'acme', 'a', 'global', 'text', 'x', 'a', 'ready'),
                ('00000000-0000-0000-0000-00000000000b', 'globex', 'b', 'global', 'text', 'x', 'b', 'ready');
         INSERT INTO kb_chunks (document_id, tenant_id, scope, metadata, ordinal, content, token_count)
         SELECT '00000000-0000-0000-0000-00000000000a', 'acme',
                CASE WHEN g <= 5 THEN 'team:red' ELSE 'team:blue' END,
                CASE WHEN g % 2 = 0 THEN '{\"desk\": \"rates\"}'::jsonb ELSE '{}'::jsonb END,
                g, 'zircon ledger line ' || g, 4
         FROM generate_series(1, 10) g;
         INSERT INTO kb_chunks (document_id, tenant_id, scope, ordinal, content, token_count)
         SELECT '00000000-0000-0000-0000-00000000000b', 'globex', 'team:red', g, 'zircon ' || g, 2
         FROM generate_series(1, 4) g;",
    );
    let matches = |tenant: &str, args: &str| {
        count(
            &db,
            Some(tenant),
            &format!("SELECT count(*) FROM kb_text_matches('zircon'::tsquery, {args})"),
        )
    };
    assert_eq!(matches(A, "100, NULL, NULL"), 10);
    assert_eq!(matches(B, "100, NULL, NULL"), 4);
    assert_eq!(matches(A, "3, NULL, NULL"), 3);
    // The filters come before the bound: 5 chunks in team:blue, 5 with desk rates.
    assert_eq!(matches(A, "100, ARRAY['team:blue'], NULL"), 5);
    assert_eq!(matches(A, "4, ARRAY['team:blue'], NULL"), 4);
    assert_eq!(matches(A, "100, NULL, '{\"desk\": \"rates\"}'"), 5);
    let both = count(
        &db,
        Some(A),
        "SELECT count(*) FROM kb_text_matches('zircon'::tsquery, 100, ARRAY['team:blue'], \
         '{\"desk\": \"rates\"}') WHERE scope = 'team:blue' AND metadata @> '{\"desk\": \"rates\"}'",
    );
    assert_eq!(both, 3, "chunks 6, 8 and 10");
    // A connection that names no tenant gets nothing.
    assert_eq!(
        count(
            &db,
            None,
            "SELECT count(*) FROM kb_text_matches('zircon'::tsquery, 100, NULL, NULL)"
        ),
        0
    );
}
