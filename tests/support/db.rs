//! A fresh PostgreSQL database per test, created from `TESSERA_TEST_DATABASE_URL` and dropped
//! (best effort) when the test ends.

use std::future::Future;
use tokio_postgres::{Client, NoTls, Row};

pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
    app_url: String,
}

/// The role the components connect as (`cargo xtask` makes it on the embedded server;
/// migrations/0018 grants it the tables): not their owner and not a superuser, so
/// row-level security applies to it.
pub const APP_ROLE: &str = "tessera_app";

impl TestDb {
    /// Creates database `t_<random>` with pgvector enabled.
    pub fn new() -> Self {
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "TESSERA_TEST_DATABASE_URL is not set: the end-to-end tests need a PostgreSQL \
                 with pgvector whose role may create databases. Run them with \
                 `cargo xtask test`, or set it to e.g. the admin URL `cargo xtask db` prints."
            )
        });
        Self::on(&admin_url)
    }

    /// Creates database `t_<random>` on the server of `admin_url` (a test that stops its
    /// server runs one of its own).
    pub fn on(admin_url: &str) -> Self {
        let admin_url = admin_url.to_string();
        let name = format!("t_{}", crate::random_hex());
        let url = with_database(&admin_url, &name);
        let app_url = with_user(&url, APP_ROLE);
        let db = Self {
            name,
            admin_url,
            url,
            app_url,
        };
        let name = db.name.clone();
        block_on(async {
            let admin = connect(&db.admin_url).await;
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e:?}"));
            ensure_app_role(&admin).await;
        });
        // Migrations create it too; doing it here keeps tests independent of them.
        db.execute("CREATE EXTENSION IF NOT EXISTS vector");
        db
    }

    /// The URL of this test's database, as its owner (a superuser: row-level security
    /// does not apply), for migrations, set-up and checks.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same database as [`APP_ROLE`], the components' role: row-level security applies.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// Runs `sql` as [`APP_ROLE`] after naming the connection's tenant as the components do
    /// (`None`: names none); `Err` carries the database's message.
    pub fn query_as_app(&self, tenant: Option<&str>, sql: &str) -> Result<Vec<Row>, String> {
        let url = self.app_url.clone();
        let sql = sql.to_string();
        let tenant = tenant.map(str::to_string);
        block_on(async move {
            let client = connect(&url).await;
            if let Some(tenant) = tenant {
                client
                    .execute(tessera_api::tenancy::SET_TENANT_SQL, &[&tenant])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            client
                .query(&sql, &[])
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                })
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `host:port` of the server, for `allowed_outbound_hosts` (`postgres://host:port`).
    pub fn host_port(&self) -> String {
        let config: tokio_postgres::Config = self.url.parse().expect("valid database URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("the test database must be reached over TCP, got {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// Runs SQL statements (no parameters) in this database.
    pub fn execute(&self, sql: &str) {
        let url = self.url.clone();
        let sql = sql.to_string();
        block_on(async move {
            connect(&url)
                .await
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        });
    }

    /// Runs a query in this database; `Err` carries the database's message.
    pub fn query(&self, sql: &str) -> Result<Vec<Row>, String> {
        let url = self.url.clone();
        let sql = sql.to_string();
        block_on(async move {
            connect(&url)
                .await
                .query(&sql, &[])
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                })
        })
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let result = std::panic::catch_unwind(|| {
            block_on(async move {
                let admin = connect(&admin_url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
            })
        });
        if let Ok(Err(e)) = result {
            eprintln!("note: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Makes [`APP_ROLE`] a login role on the server (tests on a server of their own need it
/// too). Concurrent tests race to make it; a loser's error is fine once the role is there.
async fn ensure_app_role(admin: &Client) {
    let ready = || async {
        admin
            .query(
                "SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin
                   AND NOT rolsuper AND NOT rolbypassrls",
                &[&APP_ROLE],
            )
            .await
            .map(|rows| !rows.is_empty())
            .unwrap_or(false)
    };
    if ready().await {
        return;
    }
    let made = admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                 CREATE ROLE {APP_ROLE};
               END IF;
             END $$;
             ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"
        ))
        .await;
    if let Err(e) = made
        && !ready().await
    {
        panic!("making role {APP_ROLE} (the server's role must have CREATEROLE): {e:?}");
    }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", redact(url)));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// `url` with its database name replaced by `name` (URL or key=value form).
fn with_database(url: &str, name: &str) -> String {
    let url = url.trim();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let query_at = rest.find('?').unwrap_or(rest.len());
        let (before_query, query) = rest.split_at(query_at);
        let authority = match before_query.find('/') {
            Some(i) => &before_query[..i],
            None => before_query,
        };
        format!("{}{authority}/{name}{query}", &url[..scheme_end + 3])
    } else {
        format!("{url} dbname={name}")
    }
}

/// `url` with its user replaced by `user` and no password (URL or key=value form).
fn with_user(url: &str, user: &str) -> String {
    let url = url.trim();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let host = match rest[..authority_end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        };
        format!("{}{user}@{host}", &url[..scheme_end + 3])
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| !kv.starts_with("user=") && !kv.starts_with("password="))
            .collect();
        format!("{} user={user}", kept.join(" "))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "t_1"),
            "postgres://u@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h:1/db?sslmode=disable", "t_1"),
            "postgresql://u:p@h:1/t_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:1", "t_1"),
            "postgres://u@h:1/t_1"
        );
        assert_eq!(
            with_database("host=h user=u", "t_1"),
            "host=h user=u dbname=t_1"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            with_user("postgres://u:p@127.0.0.1:5432/t_1?sslmode=disable", "app"),
            "postgres://app@127.0.0.1:5432/t_1?sslmode=disable"
        );
        assert_eq!(
            with_user("postgres://h:1/t_1", "app"),
            "postgres://app@h:1/t_1"
        );
        assert_eq!(
            with_user("host=h user=u password=p dbname=t", "app"),
            "host=h dbname=t user=app"
        );
    }
}
