//! A small blocking client of any Toxiproxy-compatible HTTP API (the control CLI's).
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use crate::ProxyError;

/// Largest response taken (larger: an error naming the limit).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A Toxiproxy API endpoint.
///
/// ```no_run
/// let c = netloom_proxy::ApiClient::new("127.0.0.1:8474");
/// let (status, proxies) = c.request("GET", "/proxies", None).unwrap();
/// assert_eq!(status, 200);
/// println!("{proxies}");
/// ```
#[derive(Debug, Clone)]
pub struct ApiClient {
    addr: String,
    timeout: Duration,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ProxyError {
    move |source| ProxyError::Io { what, source }
}

fn bad(msg: String) -> ProxyError {
    ProxyError::Io {
        what: msg,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP response"),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, ProxyError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunked body without a size line".into()))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err(bad("chunked body cut short".into()));
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or(&[]);
    }
}

impl ApiClient {
    /// A client of the API at `addr` (`HOST:PORT`).
    ///
    /// ```
    /// let c = netloom_proxy::ApiClient::new("127.0.0.1:8474");
    /// assert_eq!(c.addr(), "127.0.0.1:8474");
    /// ```
    pub fn new(addr: &str) -> ApiClient {
        ApiClient {
            addr: addr.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The API's address.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ApiClient::new("h:1").addr(), "h:1");
    /// ```
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request; returns the status and the JSON body (`null` when empty, a
    /// string when not JSON).
    ///
    /// ```no_run
    /// let c = netloom_proxy::ApiClient::new("127.0.0.1:8474");
    /// let (status, _) = c.request("POST", "/reset", None).unwrap();
    /// assert_eq!(status, 204);
    /// ```
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ProxyError> {
        let addr = self
            .addr
            .to_socket_addrs()
            .map_err(io(format!("resolving the API address {}", self.addr)))?
            .next()
            .ok_or_else(|| bad(format!("the API address {} has no address", self.addr)))?;
        let mut s = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(io(format!("connecting to the API at {}", self.addr)))?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(io("setting a read timeout".into()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netloom-proxy-cli\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes())
            .map_err(io(format!("sending {method} {path}")))?;
        let mut resp = Vec::new();
        s.take(MAX_RESPONSE_BYTES as u64 + 1)
            .read_to_end(&mut resp)
            .map_err(io(format!("reading the answer to {method} {path}")))?;
        if resp.len() > MAX_RESPONSE_BYTES {
            return Err(bad(format!(
                "response larger than the limit of {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("response without a header end".into()))?;
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(format!("bad status line in {head:?}")))?;
        let raw = &resp[split + 4..];
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
        let text = String::from_utf8_lossy(&body);
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.trim().to_owned()))
        };
        Ok((status, value))
    }
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"9\r\nabc").is_err());
    }
}
