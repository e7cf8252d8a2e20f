//! Ordered SQL migrations: `migrations/NNNN_name.sql`, each applied once in its own
//! transaction and recorded with its SHA-256, so editing an applied file is caught.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio_postgres::Client;

/// Serialises concurrent migrators (two hosts starting at once) on one database.
const LOCK_KEY: i64 = 0x7465_7373_6572_61; // "tessera"

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: String,
    pub path: PathBuf,
    pub sql: String,
    pub checksum: String,
}

/// Reads `dir`, ordered by file name; names must look like `0001_what.sql`.
pub fn read_dir(dir: &Path) -> Result<Vec<Migration>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading migrations directory {}", dir.display()))?;
    let mut migrations = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("migration file name is not UTF-8")?
            .to_string();
        let digits = name.split('_').next().unwrap_or("");
        if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || !name.contains('_') {
            bail!(
                "migration {}: file names must be NNNN_description.sql",
                path.display()
            );
        }
        let sql = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        migrations.push(Migration {
            version: name,
            path,
            sql,
            checksum,
        });
    }
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    for pair in migrations.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.version.split('_').next() == b.version.split('_').next() {
            bail!("migrations {} and {} share a number", a.version, b.version);
        }
    }
    Ok(migrations)
}

/// Applies what is missing; returns the versions applied now.
pub async fn apply(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tessera_migrations (
                version    text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .context("creating tessera_migrations")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_locked(client, migrations).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

async fn apply_locked(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>> {
    let rows = client
        .query("SELECT version, checksum FROM tessera_migrations", &[])
        .await?;
    let applied: std::collections::HashMap<String, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut done = Vec::new();
    for m in migrations {
        if let Some(recorded) = applied.get(&m.version) {
            if *recorded != m.checksum {
                bail!(
                    "migration {} was changed after it was applied (recorded checksum {}, file \
                     has {}); never edit an applied migration — add a new one",
                    m.path.display(),
                    &recorded[..12.min(recorded.len())],
                    &m.checksum[..12]
                );
            }
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(&m.sql)
            .await
            .with_context(|| format!("applying migration {}", m.path.display()))?;
        tx.execute(
            "INSERT INTO tessera_migrations (version, checksum) VALUES ($1, $2)",
            &[&m.version, &m.checksum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = %m.version, "applied migration");
        done.push(m.version.clone());
    }
    for version in applied.keys() {
        if !migrations.iter().any(|m| &m.version == version) {
            tracing::warn!(%version, "database has a migration this checkout does not know");
        }
    }
    Ok(done)
}

/// Whether every migration in `migrations` is recorded (for `/ready`).
pub async fn all_applied(client: &Client, migrations: &[Migration]) -> Result<bool> {
    let rows = client
        .query("SELECT version FROM tessera_migrations", &[])
        .await?;
    let applied: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(migrations.iter().all(|m| applied.contains(&m.version)))
}
