//! The public probe handle: [`Prober`].
use std::net::IpAddr;
use std::sync::Arc;

use crate::{ProbeError, ProbeOptions, ProbeReply, ProberConfig};

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
#[derive(Clone, Debug)]
pub struct Prober {
    inner: Arc<ProberConfig>,
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
        Ok(Prober {
            inner: Arc::new(config),
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
        let _ = (target, options, &self.inner);
        Err(ProbeError::NotSupported {
            what: "the probe engine is not built yet".into(),
        })
    }

    /// Counters since [`Prober::open`].
    ///
    /// ```no_run
    /// # fn demo(prober: netloom_probe::Prober) {
    /// println!("{} malformed packets ignored", prober.stats().malformed);
    /// # }
    /// ```
    pub fn stats(&self) -> ProberStats {
        ProberStats::default()
    }
}
