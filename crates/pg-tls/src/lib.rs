//! TLS to Postgres: libpq's `sslmode` and `sslrootcert` in a `database_url`, over rustls.
//! One copy for every Postgres client of the project: the host's own pool and its
//! `spin:postgres` factor, and the embedding worker's queue drain.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and rejects `sslrootcert`, so
//! both are taken out of the URL here, the rest is parsed by tokio-postgres, and the modes
//! are carried by the rustls certificate verifier. As libpq does:
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default, as in libpq): TLS when the server offers it, plain when it
//!   answers that it does not; the certificate is not checked;
//! - `require`: TLS or no connection; the certificate is not checked unless `sslrootcert`
//!   names a file, which makes it `verify-ca` (libpq does the same);
//! - `verify-ca`: the certificate must chain to a trusted root; its names are not checked;
//! - `verify-full`: the chain and the host name of the URL.
//!
//! Trusted roots: the PEM file `sslrootcert=<path>`, or without it (or with
//! `sslrootcert=system`) the Mozilla set compiled in from webpki-roots, which managed
//! services with public CAs (Neon, Supabase's pooler, Azure) chain to. RDS and others with a
//! private CA need their bundle as `sslrootcert`.

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values (`allow` is treated as `prefer`: both settle for plain text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "database_url: sslmode={other} is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// webpki-roots (Mozilla's set).
    System,
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
}

/// A `database_url` ready for a pool: tokio-postgres' config plus the TLS connector.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: SslMode,
}

/// Parses `database_url` (URL or `key=value` form) with its TLS settings.
pub fn parse(database_url: &str) -> Result<Target, String> {
    let (rest, mode, root_cert) = split_tls_options(database_url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("database_url is not a valid Postgres connection string: {e}"))?;
    let roots = match root_cert.as_deref() {
        None | Some("system") => Roots::System,
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    let mode = match (mode.unwrap_or(SslMode::Prefer), &roots) {
        // libpq: `require` with a root certificate file verifies the chain.
        (SslMode::Require, Roots::File(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let tls = MakeRustlsConnect::new(client_config(mode, &roots)?);
    Ok(Target { config, tls, mode })
}

/// Takes `sslmode` and `sslrootcert` out of `database_url`; returns the rest and both values.
fn split_tls_options(url: &str) -> Result<(String, Option<SslMode>, Option<String>), String> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(&value)?),
            "sslrootcert" => root_cert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("database_url: the value of {key} is not UTF-8"))?;
            if !take(key, value.into_owned())? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root_cert));
    }
    let mut rest = Vec::new();
    for (key, value, raw) in key_values(url)? {
        if !take(key, value)? {
            rest.push(raw);
        }
    }
    Ok((rest.join(" "), mode, root_cert))
}

/// `key=value` pairs of libpq's keyword form (values unquoted, or in single quotes with `\`
/// escapes), each with its source text so the others pass on unchanged.
fn key_values(text: &str) -> Result<Vec<(&str, String, &str)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("database_url: `{}` has no `=value`", rest.trim()))?;
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => break None,
                    },
                    Some((i, '\'')) => break Some(i),
                    Some((_, c)) => value.push(c),
                    None => break None,
                }
            };
            let end = end.ok_or_else(|| format!("database_url: unterminated quote in {key}"))?;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value.push_str(&rest[..end]);
            rest = &rest[end..];
        }
        let raw = start[..start.len() - rest.len()].trim();
        pairs.push((key, value, raw));
        rest = rest.trim_start();
    }
    Ok(pairs)
}

fn provider() -> Arc<CryptoProvider> {
    // Explicit, so the process-wide default (which another crate may set) does not matter.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: SslMode, roots: &Roots) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let config = match mode {
        // `disable` never uses it; `prefer`/`require` do not check the certificate (libpq).
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified {
                algorithms: provider.signature_verification_algorithms,
            })),
        SslMode::VerifyCa => {
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(roots)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("database_url: the trusted roots are unusable: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
        }
        SslMode::VerifyFull => builder.with_root_certificates(root_store(roots)?),
    };
    Ok(config.with_no_client_auth())
}

fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    match roots {
        Roots::System => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Roots::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("database_url: sslrootcert={shown} cannot be read: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("database_url: sslrootcert={shown} is not PEM: {e}"))?;
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "database_url: sslrootcert={shown} holds no usable CA certificate"
                ));
            }
            Ok(store)
        }
    }
}

/// `verify-ca`: the full check, less the host name (checked last by webpki, so a name
/// error means the chain was good).
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer`/`require`: any certificate, but the handshake itself is still checked.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a connection failed, in words that name `database_url` and the setting to change:
/// a certificate that did not verify, a server without TLS, a server that requires it.
pub fn explain(err: &tokio_postgres::Error) -> String {
    if let Some(tls) = rustls_error(err) {
        let hint = match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => "; is sslrootcert the CA that signed the server's certificate?",
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => {
                "; the host in database_url must be a name on the certificate (or use sslmode=verify-ca)"
            }
            _ => "",
        };
        return format!("database_url: the server's TLS certificate did not verify: {tls}{hint}");
    }
    // tokio-postgres' Display names only the kind; the reason is in the sources.
    let text = chain(err);
    if text.contains("server does not support TLS") {
        return "database_url: the server does not accept TLS, which sslmode=require/verify-ca/\
                verify-full needs (turn ssl on at the server, or use sslmode=prefer)"
            .to_string();
    }
    if let Some(db) = err.as_db_error()
        && db.message().contains("no encryption")
    {
        return format!(
            "database_url: the server requires TLS (it refused a connection without it: {}); \
             set sslmode=require or sslmode=verify-full",
            db.message()
        );
    }
    if text.contains("TLS") {
        return format!("database_url: TLS to the server failed: {text}");
    }
    format!("cannot connect to the database (database_url): {text}")
}

/// `explain` for what a deadpool pool returns.
pub fn explain_pool(err: &deadpool_postgres::PoolError) -> String {
    match err {
        deadpool_postgres::PoolError::Backend(e) => explain(e),
        other => format!("cannot connect to the database (database_url): {other}"),
    }
}

fn rustls_error(err: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        source = e.source();
    }
    None
}

/// The error and its sources, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(url: &str) -> SslMode {
        parse(url).map(|t| t.mode).expect("valid")
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_reaches_tokio_postgres() {
        let t = parse("postgres://u@db.example.com:5432/app").expect("valid");
        assert_eq!(t.mode, SslMode::Prefer);
        assert_eq!(t.config.get_ssl_mode(), PgSslMode::Prefer);
        let t = parse("postgres://u@h/app?sslmode=disable").expect("valid");
        assert_eq!(t.config.get_ssl_mode(), PgSslMode::Disable);
        for mode in ["require", "verify-ca", "verify-full"] {
            let t = parse(&format!("postgres://u@h/app?sslmode={mode}")).expect("valid");
            assert_eq!(t.mode.as_str(), mode);
            assert_eq!(t.config.get_ssl_mode(), PgSslMode::Require, "{mode}");
        }
        assert_eq!(mode_of("postgres://u@h/app?sslmode=allow"), SslMode::Prefer);
    }

    #[test]
    fn other_options_pass_through_and_tls_ones_are_taken_out() {
        let (rest, mode, root) = split_tls_options(
            "postgres://u:p@h:6543/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
        )
        .expect("valid");
        assert_eq!(
            rest,
            "postgres://u:p@h:6543/app?application_name=x&connect_timeout=5"
        );
        assert_eq!(mode, Some(SslMode::VerifyFull));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) =
            split_tls_options("postgresql://h/app?sslmode=require").expect("valid");
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgresql://h/app", Some(SslMode::Require), None)
        );
    }

    #[test]
    fn keyword_form_is_understood_with_quotes() {
        let (rest, mode, root) = split_tls_options(
            "host=h user=u sslmode=verify-ca sslrootcert='/a dir/ca\\'s.pem' dbname=app",
        )
        .expect("valid");
        assert_eq!(rest, "host=h user=u dbname=app");
        assert_eq!(mode, Some(SslMode::VerifyCa));
        assert_eq!(root.as_deref(), Some("/a dir/ca's.pem"));
        assert!(split_tls_options("host=h sslrootcert='open").is_err());
        assert!(split_tls_options("host").is_err());
    }

    #[test]
    fn bad_values_name_database_url() {
        let err = parse("postgres://h/app?sslmode=sometimes")
            .err()
            .expect("rejected");
        assert!(
            err.contains("database_url") && err.contains("sslmode=sometimes"),
            "{err}"
        );
        let err = parse("postgres://h/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .expect("rejected");
        assert!(
            err.contains("database_url: sslrootcert=/nonexistent/ca.pem"),
            "{err}"
        );
        let err = parse("postgres://h/app?nonsense=1")
            .err()
            .expect("rejected");
        assert!(err.contains("database_url"), "{err}");
    }

    #[test]
    fn a_root_file_makes_require_verify_the_chain() {
        let dir = std::env::temp_dir().join(format!("tessera-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = dir.join("ca.pem");
        let garbage = dir.join("empty.pem");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed CA");
        std::fs::write(&ca, cert.pem()).expect("write");
        std::fs::write(&garbage, "not a certificate\n").expect("write");
        let url = format!(
            "postgres://h/app?sslmode=require&sslrootcert={}",
            ca.display()
        );
        assert_eq!(mode_of(&url), SslMode::VerifyCa);
        let url = format!(
            "postgres://h/app?sslmode=verify-full&sslrootcert={}",
            garbage.display()
        );
        let err = parse(&url).err().expect("rejected");
        assert!(err.contains("holds no usable CA certificate"), "{err}");
        assert_eq!(
            mode_of("postgres://h/app?sslmode=verify-full&sslrootcert=system"),
            SslMode::VerifyFull
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
