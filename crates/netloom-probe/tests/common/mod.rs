//! Helpers shared by the namespace-topology test files.
use std::future::Future;

use netloom_testnet::Namespace;

/// Runs `f` on a current-thread runtime on a thread inside `ns`, so every socket the
/// prober opens (shared and per-probe) lives in that namespace; returns what `f` returns.
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
