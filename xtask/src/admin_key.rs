//! The local admin API key of `cargo xtask up`: made once, straight in the database (no key
//! exists yet to ask the admin component with), kept in `.tessera/admin_key` (0600).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use tessera_devdb::PgServer;

/// Runs `sql` in the application's database: the embedded server's, or with the installed
/// `psql` against `DATABASE_URL`.
fn psql(state_dir: &Path, server: Option<&PgServer>, url: &str, sql: &str) -> Result<String> {
    if let Some(server) = server {
        return server.query(crate::APP_DATABASE, sql);
    }
    let install = tessera_devdb::ensure_installed(state_dir)?;
    let out = Command::new(install.bin("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `text` is `tsk_<12 hex>_<64 hex>` (the format tessera_spin_kit::auth::key reads).
fn prefix_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("tsk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex(prefix, 12) && hex(secret, 64)).then_some(prefix)
}

/// The admin key of tenant `default`: the one in `.tessera/admin_key` while the database
/// still holds it unrevoked, else a new one. Call after the host has applied migrations.
pub fn ensure(state_dir: &Path, server: Option<&PgServer>, url: &str) -> Result<String> {
    let path = state_dir.join("admin_key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim().to_string();
        if let Some(prefix) = prefix_of(&key) {
            let live = psql(
                state_dir,
                server,
                url,
                &format!(
                    "SELECT count(*) FROM api_keys WHERE prefix = '{prefix}' AND revoked_at IS NULL"
                ),
            )?;
            if live == "1" {
                return Ok(key);
            }
        }
    }
    let (prefix, secret) = (random_hex(6)?, random_hex(32)?);
    // Hashed by Postgres exactly as the components hash (SHA-256 of the secret, hex).
    psql(
        state_dir,
        server,
        url,
        &format!(
            "INSERT INTO api_keys (tenant_id, prefix, secret_hash, role, name)
             VALUES ('default', '{prefix}', encode(sha256(convert_to('{secret}', 'UTF8')), 'hex'),
                     'admin', 'local admin (cargo xtask up)')"
        ),
    )
    .context("storing the local admin key")?;
    let key = format!("tsk_{prefix}_{secret}");
    crate::write_private(&path, &key)?;
    println!(
        "xtask: created the local admin API key (tenant `default`) in {}",
        path.display()
    );
    Ok(key)
}
