//! Asynchronous host name resolution: [`resolve`].
use std::net::IpAddr;

use crate::{IpVersion, ProbeError};

/// Resolves `host` (a name or an address literal) to one address, of `version` if given.
///
/// Uses the system resolver on tokio's blocking pool. A name with no address of the wanted
/// version is [`ProbeError::Resolve`].
///
/// ```
/// # tokio_test_rt(async {
/// use netloom_probe::{resolve, IpVersion};
/// let addr = resolve("127.0.0.1", None).await.unwrap();
/// assert!(addr.is_loopback());
/// assert!(resolve("127.0.0.1", Some(IpVersion::V6)).await.is_err());
/// # });
/// # fn tokio_test_rt(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Runtime::new().unwrap().block_on(f)
/// # }
/// ```
pub async fn resolve(host: &str, version: Option<IpVersion>) -> Result<IpAddr, ProbeError> {
    let wanted = |a: &IpAddr| version.is_none_or(|v| IpVersion::of(a) == v);
    if let Ok(addr) = host.parse::<IpAddr>() {
        return if wanted(&addr) {
            Ok(addr)
        } else {
            Err(ProbeError::Resolve {
                name: host.to_string(),
                reason: match version {
                    Some(IpVersion::V4) => {
                        "it is an IPv6 address and IPv4 (-4) was asked for".into()
                    }
                    _ => "it is an IPv4 address and IPv6 (-6) was asked for".into(),
                },
            })
        };
    }
    let addrs = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|err| ProbeError::Resolve {
            name: host.to_string(),
            reason: err.to_string(),
        })?;
    let mut first = None;
    for sa in addrs {
        let ip = sa.ip();
        if wanted(&ip) {
            // Prefer IPv4 when no version is asked for, like mtr.
            if ip.is_ipv4() || version.is_some() {
                return Ok(ip);
            }
            first.get_or_insert(ip);
        }
    }
    first.ok_or_else(|| ProbeError::Resolve {
        name: host.to_string(),
        reason: match version {
            Some(IpVersion::V4) => "no IPv4 address".into(),
            Some(IpVersion::V6) => "no IPv6 address".into(),
            None => "no address".into(),
        },
    })
}
