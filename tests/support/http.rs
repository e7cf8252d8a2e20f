//! A small blocking HTTP/1.1 client on `std::net::TcpStream`: one request per connection
//! (`connection: close`), chunked and content-length bodies, and raw bytes for malformed
//! requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a client waits for a response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lowercase names, in order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's own address (what the host should report as `spin-client-addr`).
    pub local_addr: Option<SocketAddr>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body ({e}); got status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// One-line description for assertion messages.
    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 600 {
            body.truncate(600);
            body.push('…');
        }
        format!("{} {:?} headers={:?}", self.status, body, self.headers)
    }
}

/// A request to send.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Body<'a>,
}

pub enum Body<'a> {
    Empty,
    /// Sent with `content-length`.
    Bytes(&'a [u8]),
    /// Sent with `transfer-encoding: chunked`, in chunks of the given size.
    Chunked(&'a [u8], usize),
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Body::Bytes(body);
        self
    }

    pub fn json(self, value: &serde_json::Value) -> OwnedJson<'a> {
        OwnedJson {
            request: self.header("content-type", "application/json"),
            body: value.to_string().into_bytes(),
        }
    }

    pub fn chunked(mut self, body: &'a [u8], chunk: usize) -> Self {
        self.body = Body::Chunked(body, chunk.max(1));
        self
    }

    pub fn send(self, addr: SocketAddr) -> std::io::Result<Response> {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {addr}\r\n", self.method, self.path);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("connection") {
            head.push_str("connection: close\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = Vec::new();
        match self.body {
            Body::Empty => {
                if matches!(self.method, "POST" | "PUT" | "PATCH") && !has("content-length") {
                    head.push_str("content-length: 0\r\n");
                }
                head.push_str("\r\n");
                bytes.extend_from_slice(head.as_bytes());
            }
            Body::Bytes(body) => {
                if !has("content-length") {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                bytes.extend_from_slice(head.as_bytes());
                bytes.extend_from_slice(body);
            }
            Body::Chunked(body, size) => {
                head.push_str("transfer-encoding: chunked\r\n\r\n");
                bytes.extend_from_slice(head.as_bytes());
                for chunk in body.chunks(size) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
        }
        let (raw, local_addr) = exchange(addr, &bytes)?;
        let mut response = parse_response(&raw)?;
        response.local_addr = local_addr;
        Ok(response)
    }
}

/// A request whose JSON body is owned (see [`Request::json`]).
pub struct OwnedJson<'a> {
    request: Request<'a>,
    body: Vec<u8>,
}

impl OwnedJson<'_> {
    pub fn send(self, addr: SocketAddr) -> std::io::Result<Response> {
        let Self { request, body } = self;
        Request {
            body: Body::Bytes(&body),
            ..request
        }
        .send(addr)
    }
}

/// Writes `bytes` (write errors are ignored: a server may answer and close before reading
/// everything) and reads until the server closes the connection.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<(Vec<u8>, Option<SocketAddr>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    let local = stream.local_addr().ok();
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A reset after the response arrived (the server closed with unread input).
        Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    Ok((raw, local))
}

/// Sends raw bytes and parses whatever comes back.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Response> {
    let (raw, local) = exchange(addr, bytes)?;
    let mut response = parse_response(&raw)?;
    response.local_addr = local;
    Ok(response)
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            invalid(format!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
        local_addr: None,
    })
}

fn decode_chunked(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size".into()))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size {
            return Err(invalid("truncated chunk".into()));
        }
        body.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_sized_bodies() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"abcde");
        assert_eq!(r.header("x-a"), Some("b"));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "{}"));
        assert_eq!(encode("http://a:1/b?c"), "http%3A%2F%2Fa%3A1%2Fb%3Fc");
    }
}
