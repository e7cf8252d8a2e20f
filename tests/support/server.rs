//! A local HTTP server on 127.0.0.1 (a std thread) for outbound tests: answers every request
//! with a fixed body and records what it received (request lines and headers).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    headers: Arc<Mutex<Vec<Headers>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

/// One request's header fields, names lowercased, in the order received.
pub type Headers = Vec<(String, String)>;

impl TestServer {
    /// Starts a server answering `200 <body>` (text/plain) to everything.
    pub fn start(body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local test server");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen_headers = headers.clone();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen_bodies = bodies.clone();
        let body = body.to_string();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let seen = seen.clone();
                let seen_headers = seen_headers.clone();
                let seen_bodies = seen_bodies.clone();
                let body = body.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &seen, &seen_headers, &seen_bodies, &body);
                });
            }
        });
        Self {
            addr,
            requests,
            headers,
            bodies,
            connections,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request lines received so far (`GET /path HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Header fields of each request received so far, in the order received.
    pub fn headers(&self) -> Vec<Headers> {
        self.headers.lock().unwrap().clone()
    }

    /// Bodies of the requests received so far that sent a `content-length` (a chunked
    /// body is read but not kept), in the order received.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<String>>,
    seen_headers: &Mutex<Vec<Headers>>,
    seen_bodies: &Mutex<Vec<Vec<u8>>>,
    body: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut close = false;
        let mut headers = Headers::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                headers.push((name.clone(), value.to_string()));
                if name == "content-length" {
                    content_length = value.parse().unwrap_or(0);
                }
                if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
                if name == "connection" && value.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        if chunked {
            // A chunked body (what guests' outbound requests send) is read to its end, or
            // its bytes would be taken for the next request on the connection.
            skip_chunked(&mut reader)?;
        } else {
            let mut received = vec![0; content_length];
            reader.read_exact(&mut received)?;
            seen_bodies.lock().unwrap().push(received);
        }
        // Headers first: a test that sees the request line may read its headers at once.
        seen_headers.lock().unwrap().push(headers);
        seen.lock()
            .unwrap()
            .push(request_line.trim_end().to_string());
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Reads a chunked body up to and including its last (empty) chunk and trailer.
fn skip_chunked(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Ok(());
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // Trailer lines up to the empty one.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
    }
}
