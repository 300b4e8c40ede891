//! Helpers shared by the test files: running in a namespace and counting answers. Tests
//! that need privileges skip through `netloom_testnet::skip_unless!` (a one-line reason;
//! a failure under `NETLOOM_TEST_STRICT=1`, as `scripts/test` runs them).
use std::future::Future;

use netloom_probe::{Outcome, ProbeError, ProbeReply};
use netloom_testnet::Namespace;

/// Runs `f` on a current-thread runtime on a thread inside `ns`, so every socket the
/// prober opens (shared and per-probe) lives in that namespace; returns what `f` returns.
#[allow(dead_code)]
pub fn in_namespace<F, Fut, R>(ns: &Namespace, f: F) -> R
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R>,
    R: Send,
{
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
    .expect("thread inside the namespace")
}

/// Awaits `probes` together and counts those that got what a probe with `ttl` gets on the
/// topologies: ttl-expired from the first router at TTL 1, an answer from the host
/// otherwise. (Not every test file that includes this module uses it.)
#[allow(dead_code)]
pub async fn count_expected<F>(ttl: u8, probes: impl Iterator<Item = F>) -> usize
where
    F: Future<Output = Result<ProbeReply, ProbeError>>,
{
    let want = if ttl == 1 {
        Outcome::TtlExpired
    } else {
        Outcome::Reply
    };
    futures::future::join_all(probes)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(r) if r.outcome == want))
        .count()
}
