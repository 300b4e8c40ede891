//! The public probe handle: [`Prober`].
use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;

use tokio::task::JoinHandle;

use crate::engine::{self, Engine};
use crate::{ProbeError, ProbeOptions, ProbeReply, ProberConfig};

/// Probes [`Prober::probe_many`] sends before it lets the receive tasks run.
const BURST: usize = 256;

/// Counters of a prober since it was opened.
///
/// ```
/// let s = netloom_probe::ProberStats::default();
/// assert_eq!(s.sent, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProberStats {
    /// Probes handed to the kernel.
    pub sent: u64,
    /// Probes answered (any outcome except no-reply).
    pub answered: u64,
    /// Probes that timed out.
    pub timed_out: u64,
    /// Packets received that parsed but matched no probe of this prober.
    pub unmatched: u64,
    /// Packets received that were truncated, forged or malformed, and ignored.
    pub malformed: u64,
}

/// An open prober: cheap to clone (an `Arc` inside), shared by concurrent probes.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
/// use netloom_probe::{Prober, ProberConfig, ProbeOptions};
/// let prober = Prober::open(ProberConfig::default()).await?;
/// let reply = prober.probe("::1".parse().unwrap(), ProbeOptions::default()).await?;
/// assert!(reply.outcome.reached_target());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

/// Owns the receive tasks: they stop when the last `Prober` clone is dropped.
struct Inner {
    engine: Arc<Engine>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("raw", &self.inner.engine.raw)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Prober {
    /// Opens the sockets (raw if permitted, else unprivileged; see
    /// [`PrivilegeMode`](crate::PrivilegeMode)) and starts the receive tasks. Must be
    /// called inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
    /// let prober = netloom_probe::Prober::open(Default::default()).await?;
    /// # let _ = prober; Ok(()) }
    /// ```
    pub async fn open(config: ProberConfig) -> Result<Prober, ProbeError> {
        let engine = Arc::new(Engine::open(config)?);
        let mut tasks: Vec<_> = [false, true]
            .into_iter()
            .filter(|v6| engine.family(*v6).is_ok())
            .map(|v6| tokio::spawn(engine::recv::run(engine.clone(), v6)))
            .collect();
        tasks.extend(engine::spawn_syn_receivers(&engine));
        Ok(Prober {
            inner: Arc::new(Inner { engine, tasks }),
        })
    }

    /// Sends one probe to `target` and waits for its outcome or its timeout.
    ///
    /// ```no_run
    /// # async fn demo(prober: netloom_probe::Prober) -> Result<(), netloom_probe::ProbeError> {
    /// use netloom_probe::{ProbeOptions, Protocol};
    /// let opts = ProbeOptions::default().with_protocol(Protocol::Tcp).with_port(22);
    /// let reply = prober.probe("127.0.0.1".parse().unwrap(), opts).await?;
    /// # let _ = reply; Ok(()) }
    /// ```
    pub async fn probe(
        &self,
        target: IpAddr,
        options: ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        self.inner.engine.probe(target, &options).await
    }

    /// Sends one probe with `options` to each of `targets`, all at once, and waits for
    /// every outcome: the results are in the order of `targets`, each as
    /// [`probe`](Prober::probe) would give it (a probe the in-flight limit has no room
    /// for is `Err(ProbesExhausted)`, the others still go out).
    ///
    /// Cheaper per probe than as many [`probe`](Prober::probe) futures when the options
    /// allow (raw sockets; ICMP, UDP or TCP SYN probes; no mark or device): the probes
    /// then leave in `sendmmsg` batches, their answers come through one queue and their
    /// timeouts through one timer, as in the `mtr-packet` server. Dropping the future
    /// ends the probes not yet finished.
    ///
    /// ```no_run
    /// # async fn demo(prober: netloom_probe::Prober) {
    /// use netloom_probe::ProbeOptions;
    /// let hosts = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    /// let results = prober.probe_many(&hosts, &ProbeOptions::default()).await;
    /// for (host, result) in hosts.iter().zip(results) {
    ///     println!("{host}: {:?}", result.map(|r| r.outcome));
    /// }
    /// # }
    /// ```
    pub async fn probe_many(
        &self,
        targets: &[IpAddr],
        options: &ProbeOptions,
    ) -> Vec<Result<ProbeReply, ProbeError>> {
        let engine = &self.inner.engine;
        if !engine.can_submit(options) {
            let probes = targets.iter().map(|t| engine.probe(*t, options));
            return futures::future::join_all(probes).await;
        }
        let mut results: Vec<Option<Result<ProbeReply, ProbeError>>> =
            targets.iter().map(|_| None).collect();
        let mut put = |(i, r): engine::fast::Finished<usize>| results[i] = Some(r);
        let mut fast = engine::fast::FastProbes::new(engine.clone(), false);
        for (n, slice) in targets.chunks(BURST).enumerate() {
            if n > 0 {
                // Lets the receive tasks read the answers so far (on a one-thread runtime
                // they run only now): a burst of thousands would overflow the socket's
                // receive buffer before anyone read it.
                tokio::task::yield_now().await;
            }
            for (i, target) in slice.iter().enumerate() {
                let i = n * BURST + i;
                if let Err(e) = fast.submit(i, *target, options) {
                    put((i, Err(e)));
                }
            }
            fast.flush(&mut put);
        }
        std::future::poll_fn(|cx| {
            while fast.len() > 0 {
                if fast.poll_finished(cx, &mut put).is_pending() {
                    return Poll::Pending;
                }
            }
            Poll::Ready(())
        })
        .await;
        results
            .into_iter()
            .map(|r| r.expect("every submitted probe finishes before fast.len() is 0"))
            .collect()
    }

    /// Counters since [`Prober::open`].
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// println!("{} malformed packets ignored", prober.stats().malformed);
    /// # }
    /// ```
    pub fn stats(&self) -> ProberStats {
        self.inner.engine.stats()
    }

    /// True if the prober uses raw sockets (CAP_NET_RAW), false in unprivileged mode.
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// if !prober.is_raw() {
    ///     println!("unprivileged: no MPLS labels");
    /// }
    /// # }
    /// ```
    pub fn is_raw(&self) -> bool {
        self.inner.engine.raw
    }

    /// True if SCTP probes are possible on this kernel.
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// println!("sctp: {}", prober.supports_sctp());
    /// # }
    /// ```
    pub fn supports_sctp(&self) -> bool {
        self.inner.engine.supports(crate::Protocol::Sctp)
    }

    /// True if probes to addresses of this IP version can be sent.
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// println!("ipv6: {}", prober.supports(netloom_probe::IpVersion::V6));
    /// # }
    /// ```
    pub fn supports(&self, version: crate::IpVersion) -> bool {
        self.inner
            .engine
            .family(version == crate::IpVersion::V6)
            .is_ok()
    }

    /// Probes currently outstanding (counted against `max_in_flight`).
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// assert_eq!(prober.in_flight(), 0);
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.inner.engine.in_flight()
    }

    /// The engine behind this prober (for the `mtr-packet` session's submit path).
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }
}
