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
use pyo3::types::{PyList, PyString, PyTuple};

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

/// A keyword's integer as the type the prober takes, or InvalidArgument naming the keyword
/// and `expected` (a Python int out of range is not an OverflowError outside NetloomError).
fn int_arg<T: TryFrom<i64>>(name: &str, value: i64, expected: &str) -> Result<T, Error> {
    T::try_from(value).map_err(|_| {
        Error::new(
            "InvalidArgument",
            format!("{name}={value}: expected {expected}"),
        )
    })
}

/// [`int_arg`] for a keyword that may be `None`.
fn opt_int_arg<T: TryFrom<i64>>(
    name: &str,
    value: Option<i64>,
    expected: &str,
) -> Result<Option<T>, Error> {
    value.map(|v| int_arg(name, v, expected)).transpose()
}

fn seconds(name: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s)
        .map_err(|e| Error::new("InvalidArgument", format!("{name}={s}: {e}")))
}

/// The keyword arguments of `Prober.probe` (mtrpacket's names), validated once:
/// `netloom.probe.Prober` keeps one per distinct set of keywords, so a burst of probes
/// with the same options converts them once.
#[pyclass(module = "netloom._native", frozen)]
#[derive(Clone)]
struct ProbeSpec {
    version: Option<IpVersion>,
    options: ProbeOptions,
}

#[pymethods]
impl ProbeSpec {
    /// `ProbeSpec(protocol=..., ttl=..., ...)`: raises InvalidArgument for a bad value.
    #[new]
    #[pyo3(signature = (*, protocol, ttl, port, local_ip, local_port, timeout, size, bit_pattern, tos, mark, ip_version))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        protocol: &str,
        ttl: i64,
        port: Option<i64>,
        local_ip: Option<&str>,
        local_port: Option<i64>,
        timeout: f64,
        size: Option<i64>,
        bit_pattern: i64,
        tos: i64,
        mark: Option<i64>,
        ip_version: Option<i64>,
    ) -> Result<ProbeSpec, Error> {
        let ttl: u8 = int_arg("ttl", ttl, "1..=255")?;
        let port = opt_int_arg("port", port, "0..=65535")?;
        let local_port = opt_int_arg("local_port", local_port, "0..=65535")?;
        let size = opt_int_arg("size", size, "a packet size in bytes")?;
        let bit_pattern = int_arg("bit_pattern", bit_pattern, "0..=255")?;
        let tos = int_arg("tos", tos, "0..=255")?;
        let mark = opt_int_arg("mark", mark, "0..=4294967295")?;
        let ip_version = opt_int_arg("ip_version", ip_version, "4 or 6")?;
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
        Ok(ProbeSpec {
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
}

/// One probe's outcome; becomes a `netloom.probe.ProbeResult` on the loop thread.
struct Outcome(ResultTuple);

/// `netloom.probe.ProbeResult`, looked up once.
static PROBE_RESULT: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
/// `netloom.probe.Mpls`, looked up once.
static MPLS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
/// `tuple.__new__`: makes a named tuple without running its Python `__new__`.
static TUPLE_NEW: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

impl<'py> IntoPyObject<'py> for Outcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (success, word, time_ms, responder, mpls) = self.0;
        let tuple_new = TUPLE_NEW
            .get_or_try_init(py, || {
                py.get_type::<PyTuple>()
                    .getattr("__new__")
                    .map(Bound::unbind)
            })?
            .bind(py);
        let labels = PyList::empty(py);
        if !mpls.is_empty() {
            let mpls_class = MPLS.import(py, "netloom.probe", "Mpls")?;
            for label in mpls {
                labels.append(tuple_new.call1((mpls_class, label))?)?;
            }
        }
        let class = PROBE_RESULT.import(py, "netloom.probe", "ProbeResult")?;
        let word = match word.as_str() {
            "reply" => pyo3::intern!(py, "reply").clone(),
            "no-reply" => pyo3::intern!(py, "no-reply").clone(),
            "ttl-expired" => pyo3::intern!(py, "ttl-expired").clone(),
            other => PyString::intern(py, other),
        };
        let fields = (success, word, time_ms, responder, labels);
        tuple_new.call1((class, fields))
    }
}

/// Sends one probe; its outcome, or the Python exception for a bad target.
async fn probe_one(prober: Prober, host: String, spec: ProbeSpec) -> PyResult<Outcome> {
    let target = netloom_probe::resolve(&host, spec.version)
        .await
        .map_err(probe_error)?;
    outcome(prober.probe(target, spec.options).await)
}

/// A probe's result as a `ProbeResult`, or the Python exception for a bad argument.
fn outcome(result: Result<ProbeReply, ProbeError>) -> PyResult<Outcome> {
    Ok(Outcome(match result {
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
    }))
}

/// The native prober behind `netloom.probe.Prober`; open it with [`open_prober`].
#[pyclass(module = "netloom._native", frozen)]
struct NativeProber {
    prober: Prober,
}

/// Opens a prober: `await open_prober(max_in_flight, privilege, receive_ring)`.
/// `privilege` is `auto` (raw sockets if permitted), `raw` or `unprivileged` (ICMP
/// datagram sockets); `receive_ring` is [`ProberConfig::receive_ring`].
#[pyfunction]
#[pyo3(signature = (max_in_flight, privilege, receive_ring=true))]
fn open_prober(
    py: Python<'_>,
    max_in_flight: usize,
    privilege: String,
    receive_ring: bool,
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
        receive_ring,
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
    /// `await probe(host, spec)` -> a `netloom.probe.ProbeResult`. The probe starts with
    /// the others made in the same loop iteration (one hand-over to the runtime for all).
    fn probe<'py>(
        &self,
        py: Python<'py>,
        host: String,
        spec: &Bound<'py, ProbeSpec>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = spec.get().clone();
        let prober = self.prober.clone();
        crate::bridge::awaitable_batched(py, move || probe_one(prober, host, spec))
    }

    /// `await probe_many(hosts, spec)` -> a list of `netloom.probe.ProbeResult`, in the
    /// order of `hosts`, all probes in flight at once: one awaitable for the whole batch.
    /// A host that does not resolve fails the batch (HostResolveError).
    fn probe_many<'py>(
        &self,
        py: Python<'py>,
        hosts: Vec<String>,
        spec: &Bound<'py, ProbeSpec>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = spec.get().clone();
        let prober = self.prober.clone();
        crate::bridge::awaitable_batched(py, move || async move {
            let resolving = hosts
                .iter()
                .map(|host| netloom_probe::resolve(host, spec.version));
            let targets = futures::future::try_join_all(resolving)
                .await
                .map_err(probe_error)?;
            let results = prober.probe_many(&targets, &spec.options).await;
            results
                .into_iter()
                .map(outcome)
                .collect::<PyResult<Vec<_>>>()
        })
    }

    /// `await trace(host, ...)` -> a list of per-hop dicts (mtr `--report` columns).
    #[pyo3(signature = (host, *, cycles, first_ttl, max_ttl, interval, protocol, port, timeout, size, ip_version))]
    #[allow(clippy::too_many_arguments)]
    fn trace<'py>(
        &self,
        py: Python<'py>,
        host: String,
        cycles: i64,
        first_ttl: i64,
        max_ttl: i64,
        interval: f64,
        protocol: &str,
        port: Option<i64>,
        timeout: f64,
        size: Option<i64>,
        ip_version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cycles = int_arg("cycles", cycles, "0..=4294967295")?;
        let first_ttl = int_arg("first_ttl", first_ttl, "1..=255")?;
        let max_ttl: u8 = int_arg("max_ttl", max_ttl, "1..=255")?;
        let req = ProbeSpec::new(
            protocol,
            i64::from(max_ttl.max(1)),
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
    m.add_class::<ProbeSpec>()?;
    m.add_function(wrap_pyfunction!(open_prober, m)?)?;
    m.add_function(wrap_pyfunction!(check_support, m)?)?;
    Ok(())
}
