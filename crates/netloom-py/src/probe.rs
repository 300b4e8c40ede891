//! `netloom.probe`'s engine: one [`Prober`] per Python `Prober`, probes as awaitables.
//!
//! Results come back as plain tuples in mtrpacket's `ProbeResult` field order
//! `(success, result, time_ms, responder, mpls)`; `result` is the reply word mtr-packet
//! would print (`reply`, `ttl-expired`, `no-reply`, `no-route-host`, `probes-exhausted`,
//! ...), taken from the same code that writes `mtr-packet`'s replies.
use std::net::IpAddr;
use std::time::Duration;

use netloom_probe::mtr_packet::{Dialect, ErrorReply, Reply, Support};
use netloom_probe::trace::{self, TraceConfig};
use netloom_probe::{
    IpVersion, MplsLabel, PrivilegeMode, ProbeError, ProbeOptions, ProbeReply, Prober,
    ProberConfig, Protocol,
};
use pyo3::prelude::*;

use crate::error::{Attr, Error, catch_future};

/// One MPLS label as mtrpacket's `Mpls` fields: `(label, traffic_class, bottom_of_stack, ttl)`.
type MplsTuple = (u32, u8, bool, u8);
/// mtrpacket's `ProbeResult` fields: `(success, result, time_ms, responder, mpls)`.
type ResultTuple = (bool, String, Option<f64>, Option<String>, Vec<MplsTuple>);

fn mpls(labels: &[MplsLabel]) -> Vec<MplsTuple> {
    labels
        .iter()
        .map(|l| (l.label, l.traffic_class, l.bottom_of_stack, l.ttl))
        .collect()
}

/// The Python exception for an engine error.
pub(crate) fn probe_error(err: ProbeError) -> PyErr {
    let msg = err.to_string();
    match err {
        ProbeError::PermissionDenied {
            needs, alternative, ..
        } => Error::new("NetloomPermissionError", msg)
            .attr("capability", Attr::Str(needs.to_owned()))
            .attr("alternative", Attr::Str(alternative)),
        ProbeError::InvalidArgument { .. } => Error::new("InvalidArgument", msg),
        ProbeError::NotSupported { .. } => Error::new("NotSupported", msg),
        ProbeError::Resolve { .. } => Error::new("HostResolveError", msg),
        ProbeError::ProbesExhausted { limit } => {
            Error::new("ProbesExhausted", msg).attr("limit", Attr::Int(limit as i128))
        }
        _ => Error::new("ProbeError", msg),
    }
    .into()
}

/// The second word of a reply line, e.g. `ttl-expired` in `0 ttl-expired ip-4 ...`.
fn reply_word(reply: Reply) -> String {
    let mut line = String::new();
    reply.write_line(Dialect::Current, &mut line);
    line.split_whitespace()
        .nth(1)
        .unwrap_or("unexpected-error")
        .to_owned()
}

fn result_tuple(reply: ProbeReply) -> ResultTuple {
    let success = reply.outcome.reached_target();
    let time_ms = reply.rtt.map(|d| d.as_secs_f64() * 1000.0);
    let responder = reply.responder.map(|a| a.to_string());
    let mpls = mpls(&reply.mpls);
    let word = reply_word(Reply::Probe { token: 0, reply });
    let answered = word != "no-reply";
    (
        success,
        word,
        if answered { time_ms } else { None },
        if answered { responder } else { None },
        mpls,
    )
}

/// A protocol by the name `Protocol::ALL` gives it (one list for Rust, Python and the CLI).
fn parse_protocol(name: &str) -> Result<Protocol, Error> {
    name.parse().map_err(|_| {
        let names: Vec<String> = Protocol::ALL.iter().map(|p| format!("'{p}'")).collect();
        let (last, rest) = names.split_last().expect("at least one protocol");
        Error::new(
            "InvalidArgument",
            format!("protocol={name:?}: expected {} or {last}", rest.join(", ")),
        )
    })
}

fn parse_version(v: Option<u8>) -> Result<Option<IpVersion>, Error> {
    match v {
        None => Ok(None),
        Some(4) => Ok(Some(IpVersion::V4)),
        Some(6) => Ok(Some(IpVersion::V6)),
        Some(v) => Err(Error::new(
            "InvalidArgument",
            format!("ip_version={v}: expected 4 or 6"),
        )),
    }
}

fn seconds(name: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s)
        .map_err(|e| Error::new("InvalidArgument", format!("{name}={s}: {e}")))
}

/// The keyword arguments of `Prober.probe` (mtrpacket's names), validated.
#[derive(Clone)]
struct Request {
    version: Option<IpVersion>,
    options: ProbeOptions,
}

#[allow(clippy::too_many_arguments)]
fn request(
    protocol: &str,
    ttl: u8,
    port: Option<u16>,
    local_ip: Option<&str>,
    local_port: Option<u16>,
    timeout: f64,
    size: Option<usize>,
    bit_pattern: u8,
    tos: u8,
    mark: Option<u32>,
    ip_version: Option<u8>,
) -> Result<Request, Error> {
    let local_addr = local_ip
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                Error::new(
                    "InvalidArgument",
                    format!("local_ip={s:?} is not an IP address"),
                )
            })
        })
        .transpose()?;
    if ttl == 0 {
        return Err(Error::new("InvalidArgument", "ttl=0: expected 1..=255"));
    }
    Ok(Request {
        version: parse_version(ip_version)?,
        options: ProbeOptions {
            protocol: parse_protocol(protocol)?,
            ttl,
            port,
            local_addr,
            local_port,
            timeout: seconds("timeout", timeout)?,
            size,
            bit_pattern,
            tos,
            mark,
            ..ProbeOptions::default()
        },
    })
}

/// The native prober behind `netloom.probe.Prober`; open it with [`open_prober`].
#[pyclass(module = "netloom._native", frozen)]
struct NativeProber {
    prober: Prober,
}

/// Opens a prober: `await open_prober(max_in_flight, privilege)`. `privilege` is `auto`
/// (raw sockets if permitted), `raw` or `unprivileged` (ICMP datagram sockets).
#[pyfunction]
fn open_prober(
    py: Python<'_>,
    max_in_flight: usize,
    privilege: String,
) -> PyResult<Bound<'_, PyAny>> {
    let privilege = match privilege.as_str() {
        "auto" => PrivilegeMode::Auto,
        "raw" => PrivilegeMode::Raw,
        "unprivileged" => PrivilegeMode::Unprivileged,
        other => {
            return Err(Error::new(
                "InvalidArgument",
                format!("privilege={other:?}: expected 'auto', 'raw' or 'unprivileged'"),
            )
            .into());
        }
    };
    if max_in_flight == 0 {
        return Err(Error::new("InvalidArgument", "max_in_flight=0: expected at least 1").into());
    }
    let config = ProberConfig {
        max_in_flight,
        privilege,
        ..ProberConfig::default()
    };
    crate::bridge::awaitable(
        py,
        catch_future(async move {
            let prober = Prober::open(config).await.map_err(probe_error)?;
            Ok(NativeProber { prober })
        }),
    )
}

#[pymethods]
impl NativeProber {
    /// `await probe(host, ...)` -> `(success, result, time_ms, responder, mpls)`.
    #[pyo3(signature = (host, *, protocol, ttl, port, local_ip, local_port, timeout, size, bit_pattern, tos, mark, ip_version))]
    #[allow(clippy::too_many_arguments)]
    fn probe<'py>(
        &self,
        py: Python<'py>,
        host: String,
        protocol: &str,
        ttl: u8,
        port: Option<u16>,
        local_ip: Option<&str>,
        local_port: Option<u16>,
        timeout: f64,
        size: Option<usize>,
        bit_pattern: u8,
        tos: u8,
        mark: Option<u32>,
        ip_version: Option<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = request(
            protocol,
            ttl,
            port,
            local_ip,
            local_port,
            timeout,
            size,
            bit_pattern,
            tos,
            mark,
            ip_version,
        )?;
        let prober = self.prober.clone();
        crate::bridge::awaitable(
            py,
            catch_future(async move {
                let target = netloom_probe::resolve(&host, req.version)
                    .await
                    .map_err(probe_error)?;
                Ok(match prober.probe(target, req.options).await {
                    Ok(reply) => result_tuple(reply),
                    Err(ProbeError::InvalidArgument { what }) => {
                        return Err(Error::new("InvalidArgument", what).into());
                    }
                    Err(err) => {
                        let error = ErrorReply::from_probe_error(&err);
                        (
                            false,
                            reply_word(Reply::Error { token: 0, error }),
                            None,
                            None,
                            vec![],
                        )
                    }
                })
            }),
        )
    }

    /// `await trace(host, ...)` -> a list of per-hop dicts (mtr `--report` columns).
    #[pyo3(signature = (host, *, cycles, first_ttl, max_ttl, interval, protocol, port, timeout, size, ip_version))]
    #[allow(clippy::too_many_arguments)]
    fn trace<'py>(
        &self,
        py: Python<'py>,
        host: String,
        cycles: u32,
        first_ttl: u8,
        max_ttl: u8,
        interval: f64,
        protocol: &str,
        port: Option<u16>,
        timeout: f64,
        size: Option<usize>,
        ip_version: Option<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = request(
            protocol,
            max_ttl.max(1),
            port,
            None,
            None,
            timeout,
            size,
            0,
            0,
            None,
            ip_version,
        )?;
        let config = TraceConfig {
            cycles,
            first_ttl,
            max_ttl,
            interval: seconds("interval", interval)?,
            probe: req.options,
        };
        let prober = self.prober.clone();
        crate::bridge::awaitable(
            py,
            catch_future(async move {
                let target = netloom_probe::resolve(&host, req.version)
                    .await
                    .map_err(probe_error)?;
                let done = trace::run(&prober, target, &config, |_, _| {})
                    .await
                    .map_err(probe_error)?;
                let hops: Vec<HopTuple> = done
                    .report()
                    .into_iter()
                    .map(|h| {
                        (
                            h.hop,
                            h.hosts.iter().map(|a| a.to_string()).collect(),
                            h.loss_percent,
                            h.sent,
                            h.received,
                            [h.last_ms, h.avg_ms, h.best_ms, h.worst_ms, h.stdev_ms],
                            mpls(&h.mpls),
                            h.outcome.map(|o| {
                                reply_word(Reply::Probe {
                                    token: 0,
                                    reply: ProbeReply {
                                        outcome: o,
                                        responder: Some(target),
                                        rtt: None,
                                        mpls: vec![],
                                    },
                                })
                            }),
                        )
                    })
                    .collect();
                Ok((target.to_string(), hops))
            }),
        )
    }

    /// True if the prober uses raw sockets (CAP_NET_RAW); false when unprivileged.
    #[getter]
    fn is_raw(&self) -> bool {
        self.prober.is_raw()
    }

    /// Probes outstanding right now.
    #[getter]
    fn in_flight(&self) -> usize {
        self.prober.in_flight()
    }

    /// Counters since open: `(sent, answered, timed_out, unmatched, malformed)`.
    fn stats(&self) -> (u64, u64, u64, u64, u64) {
        let s = self.prober.stats();
        (s.sent, s.answered, s.timed_out, s.unmatched, s.malformed)
    }
}

/// One hop of a trace: `(hop, hosts, loss_percent, sent, received, [last, avg, best,
/// worst, stdev] ms, mpls, outcome word)`.
type HopTuple = (
    u8,
    Vec<String>,
    f64,
    u32,
    u32,
    [f64; 5],
    Vec<MplsTuple>,
    Option<String>,
);

/// mtr-packet's `check-support` answer for `feature` (`ok`, `no`, or the version).
#[pyfunction]
fn check_support(feature: &str) -> &'static str {
    Support::detect().feature(feature, Dialect::Current.version())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeProber>()?;
    m.add_function(wrap_pyfunction!(open_prober, m)?)?;
    m.add_function(wrap_pyfunction!(check_support, m)?)?;
    Ok(())
}
