//! Names of responders: reverse DNS (PTR), AS numbers and AS names over DNS (Team Cymru's
//! `origin.asn.cymru.com` and `AS<n>.asn.cymru.com` TXT records, as mtr and trippy ask),
//! through the system's resolver configuration. Lookups run as tasks on the runtime and
//! fill a cache; asking never waits, so probes are never held back by a slow name server.
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
    /// Per responder, the name of its AS (looked up once its number is known).
    as_names: Arc<Mutex<HashMap<IpAddr, Entry>>>,
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
            as_names: Arc::default(),
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

    /// The name of `ip`'s AS as its registry has it (`EXAMPLE-NET - Example network, ZZ`)
    /// if known; starts its lookup once the AS number is known (never waits).
    pub fn as_name(&self, ip: IpAddr) -> Option<String> {
        let number = self.asn(ip)?;
        let resolver = self.resolver.clone();
        lookup(&self.runtime, &self.as_names, ip, async move {
            let answer = resolver
                .txt_lookup(format!("{number}.asn.cymru.com."))
                .await
                .ok()?;
            as_name_from_txt(&answer.iter().next()?.to_string())
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
        // An AS name is asked for once its number has come: `as_name` starts it.
        let as_pending = |ip: &IpAddr| {
            if !self.done(&self.asns, *ip) {
                return true;
            }
            self.as_name(*ip);
            self.asn(*ip).is_some() && !self.done(&self.as_names, *ip)
        };
        while tokio::time::Instant::now() < deadline
            && ips
                .iter()
                .any(|ip| (dns && !self.done(&self.names, *ip)) || (asn && as_pending(ip)))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The label of `ip` in a report or the live view: `[AS64500 [HANDLE] ]name`, the
    /// address while (or when) no name is known; HANDLE is the AS name's first word
    /// (`EXAMPLE-NET` of `EXAMPLE-NET - Example network, ZZ`).
    pub fn label(&self, ip: IpAddr, dns: bool, asn: bool) -> String {
        let name = dns
            .then(|| self.name(ip))
            .flatten()
            .unwrap_or_else(|| ip.to_string());
        if !asn {
            return name;
        }
        match (self.asn(ip), self.as_name(ip)) {
            (Some(number), Some(as_name)) => format!("{number} {} {name}", handle(&as_name)),
            (Some(number), None) => format!("{number} {name}"),
            (None, _) => format!("AS??? {name}"),
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

/// The AS name of an `AS<n>.asn.cymru.com` TXT answer, its last `|` field:
/// `64500 | ZZ | test | 2026-01-01 | EXAMPLE-NET - Example network, ZZ`.
fn as_name_from_txt(txt: &str) -> Option<String> {
    let name = txt.rsplit('|').next()?.trim();
    (txt.contains('|') && !name.is_empty()).then(|| name.to_owned())
}

/// The first word of an AS name: its registry handle (`EXAMPLE-NET`).
fn handle(as_name: &str) -> &str {
    as_name
        .split_whitespace()
        .next()
        .unwrap_or(as_name)
        .trim_end_matches(',')
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

    proptest::proptest! {
        /// Whatever TXT text a name server sends, the AS name is the trimmed, non-empty last
        /// `|` field or nothing, and its handle is its first word; nothing panics.
        #[test]
        fn any_txt_answer_gives_a_clean_as_name_or_none(txt in "[ -~]{0,80}|([a-zA-Z0-9 ,.-]{0,12}\\|){0,6}[a-zA-Z0-9 ,.-]{0,20}") {
            if let Some(name) = as_name_from_txt(&txt) {
                proptest::prop_assert!(!name.is_empty() && !name.contains('|'));
                proptest::prop_assert_eq!(name.trim(), name.as_str());
                let h = handle(&name);
                proptest::prop_assert!(name.starts_with(h.trim_end_matches(',')) && !h.contains(' '));
            } else {
                proptest::prop_assert!(!txt.contains('|') || txt.rsplit('|').next().unwrap().trim().is_empty());
            }
        }
    }

    #[test]
    fn as_names_from_cymru_answers() {
        let txt = "64500 | ZZ | test | 2026-01-01 | EXAMPLE-NET - Example network, ZZ";
        let name = as_name_from_txt(txt).unwrap();
        assert_eq!(name, "EXAMPLE-NET - Example network, ZZ");
        assert_eq!(handle(&name), "EXAMPLE-NET");
        assert_eq!(handle("GOOGLE, US"), "GOOGLE");
        assert_eq!(as_name_from_txt("no fields"), None);
        assert_eq!(as_name_from_txt("64500 | ZZ |  "), None);
    }

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
