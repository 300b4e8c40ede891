//! Addresses as users type them: `PORT`, `:PORT`, `HOST:PORT`, `[IPv6]:PORT`, host names
//! resolved at start, so a typo is refused before anything listens.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// The forms a listening address may take, for error messages.
const LISTEN_FORMS: &str = "PORT, :PORT, HOST:PORT or [IPv6]:PORT";

/// Splits `HOST:PORT` / `[V6]:PORT`; `what` names the forms in the error.
fn split_host_port<'a>(s: &'a str, forms: &str) -> Result<(&'a str, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: a '[' without its ']' (expected {forms})"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{s:?} has no port (expected {forms})"))?;
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!(
                    "{s:?}: an IPv6 address needs brackets, as in [::1]:8080 (expected {forms})"
                ));
            }
            Some((host, port)) => (host, port),
            None => return Err(format!("{s:?} has no port (expected {forms})")),
        }
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port (expected 0..=65535 in {forms})"))?;
    Ok((host, port))
}

/// Resolves `host` (a name or an address literal) to its first address.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host} does not resolve: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// Parses a listening address. `PORT` and `:PORT` listen on 127.0.0.1 (loopback, so
/// nothing is exposed by accident); `0.0.0.0:PORT` or `[::]:PORT` listen everywhere.
pub fn listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let bare = s.strip_prefix(':').unwrap_or(s);
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        let port = bare
            .parse::<u16>()
            .map_err(|_| format!("{bare} is not a port (expected 0..=65535)"))?;
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    let (host, port) = split_host_port(s, LISTEN_FORMS)?;
    if host.is_empty() {
        return Err(format!("{s:?} has no host (expected {LISTEN_FORMS})"));
    }
    resolve(host, port)
}

/// Checks a target `HOST:PORT` (port 1..=65535; the host resolves now) and returns it as
/// typed, so TLS still verifies and sends the name.
pub fn target(s: &str) -> Result<String, String> {
    const FORMS: &str = "HOST:PORT or [IPv6]:PORT";
    let s = s.trim();
    let (host, port) = split_host_port(s, FORMS)?;
    if host.is_empty() {
        return Err(format!("{s:?} has no host (expected {FORMS})"));
    }
    if port == 0 {
        return Err(format!(
            "port 0 cannot be connected to (expected 1..=65535 in {FORMS})"
        ));
    }
    resolve(host, port)?;
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_a_port_alone_a_colon_port_names_and_brackets() {
        assert_eq!(listen("7000"), Ok("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(listen(":7000"), Ok("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(listen("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert_eq!(listen("0.0.0.0:80"), Ok("0.0.0.0:80".parse().unwrap()));
        assert!(listen("localhost:7000").unwrap().ip().is_loopback());
        assert!(listen("70000").unwrap_err().contains("0..=65535"));
        assert!(listen("::1:80").unwrap_err().contains("brackets"));
        assert!(listen("[::1").unwrap_err().contains("without its ']'"));
        assert!(listen("nonsense").unwrap_err().contains("PORT, :PORT"));
    }

    #[test]
    fn targets_need_a_host_a_real_port_and_a_name_that_resolves() {
        assert_eq!(target("127.0.0.1:80"), Ok("127.0.0.1:80".into()));
        assert_eq!(target("localhost:80"), Ok("localhost:80".into()));
        assert!(target("127.0.0.1").unwrap_err().contains("has no port"));
        assert!(
            target("127.0.0.1:70000")
                .unwrap_err()
                .contains("is not a port")
        );
        assert!(target("127.0.0.1:0").unwrap_err().contains("port 0"));
        assert!(target(":80").unwrap_err().contains("has no host"));
        assert!(
            target("no.such.host.invalid:80")
                .unwrap_err()
                .contains("does not resolve")
        );
    }
}
