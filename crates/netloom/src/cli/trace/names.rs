//! Names of responders: reverse DNS (PTR) and AS numbers over DNS (Team Cymru's
//! `origin.asn.cymru.com` TXT records, as mtr and trippy ask), through the system's
//! resolver configuration. Lookups run as tasks on the runtime and fill a cache; asking
//! never waits, so probes are never held back by a slow name server.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioAsyncResolver;

/// A cache entry: `None` while the lookup runs, then its answer (`Some(None)`: no name).
type Entry = Option<Option<String>>;

/// Asynchronous, cached reverse-DNS and AS lookups.
#[derive(Clone)]
pub struct Names {
    resolver: TokioAsyncResolver,
    runtime: tokio::runtime::Handle,
    names: Arc<Mutex<HashMap<IpAddr, Entry>>>,
    asns: Arc<Mutex<HashMap<IpAddr, Entry>>>,
}

impl Names {
    /// Reads `/etc/resolv.conf`; lookups run on `runtime`.
    pub fn from_system(runtime: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let (config, mut opts) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| anyhow::anyhow!("reading the resolver configuration: {e}"))?;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        Ok(Names {
            resolver: TokioAsyncResolver::tokio(config, opts),
            runtime,
            names: Arc::default(),
            asns: Arc::default(),
        })
    }

    /// The name of `ip` if known; starts its lookup otherwise (never waits).
    pub fn name(&self, ip: IpAddr) -> Option<String> {
        let resolver = self.resolver.clone();
        lookup(&self.runtime, &self.names, ip, async move {
            let answer = resolver.reverse_lookup(ip).await.ok()?;
            let name = answer.iter().next()?.to_utf8();
            Some(name.trim_end_matches('.').to_owned())
        })
    }

    /// `AS64500` for `ip` if known; starts its lookup otherwise (never waits).
    pub fn asn(&self, ip: IpAddr) -> Option<String> {
        let resolver = self.resolver.clone();
        lookup(&self.runtime, &self.asns, ip, async move {
            let answer = resolver.txt_lookup(cymru_name(ip)).await.ok()?;
            let txt = answer.iter().next()?.to_string();
            let asn = txt.split('|').next()?.split_whitespace().next()?.to_owned();
            asn.chars()
                .all(|c| c.is_ascii_digit())
                .then(|| format!("AS{asn}"))
        })
    }

    /// Starts the lookups of every address and waits until all have finished or
    /// `limit` has passed (for a report, which is printed once).
    pub async fn settle(&self, ips: &[IpAddr], dns: bool, asn: bool, limit: Duration) {
        for ip in ips {
            if dns {
                self.name(*ip);
            }
            if asn {
                self.asn(*ip);
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline
            && ips.iter().any(|ip| {
                (dns && !self.done(&self.names, *ip)) || (asn && !self.done(&self.asns, *ip))
            })
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The label of `ip` in a report or the live view: `[AS64500 ]name`, the address
    /// while (or when) no name is known.
    pub fn label(&self, ip: IpAddr, dns: bool, asn: bool) -> String {
        let name = dns
            .then(|| self.name(ip))
            .flatten()
            .unwrap_or_else(|| ip.to_string());
        match asn.then(|| self.asn(ip)) {
            Some(a) => format!("{} {name}", a.unwrap_or_else(|| "AS???".to_owned())),
            None => name,
        }
    }

    fn done(&self, cache: &Mutex<HashMap<IpAddr, Entry>>, ip: IpAddr) -> bool {
        matches!(
            cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&ip),
            Some(Some(_))
        )
    }
}

/// The cached answer for `ip`, or `None` after starting `query` once.
fn lookup(
    runtime: &tokio::runtime::Handle,
    cache: &Arc<Mutex<HashMap<IpAddr, Entry>>>,
    ip: IpAddr,
    query: impl std::future::Future<Output = Option<String>> + Send + 'static,
) -> Option<String> {
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    match map.get(&ip) {
        Some(Some(answer)) => answer.clone(),
        Some(None) => None,
        None => {
            map.insert(ip, None);
            let cache = cache.clone();
            runtime.spawn(async move {
                let answer = query.await;
                cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(ip, Some(answer));
            });
            None
        }
    }
}

/// `2.0.18.198.origin.asn.cymru.com.` / nibbles `.origin6.asn.cymru.com.`.
fn cymru_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.origin.asn.cymru.com.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::new();
            for byte in a.octets().iter().rev() {
                s += &format!("{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            s + "origin6.asn.cymru.com."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cymru_names() {
        assert_eq!(
            cymru_name("198.18.0.2".parse().unwrap()),
            "2.0.18.198.origin.asn.cymru.com."
        );
        let v6 = cymru_name("2001:db8::1".parse().unwrap());
        assert!(
            v6.starts_with("1.0.0.0.") && v6.ends_with("8.b.d.0.1.0.0.2.origin6.asn.cymru.com.")
        );
    }
}
