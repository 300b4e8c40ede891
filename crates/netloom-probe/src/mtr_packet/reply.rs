//! Reply lines: what mtr-packet prints for each outcome and error, in both dialects.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use crate::{MplsLabel, Outcome, ProbeError, ProbeReply, RouteScope};

/// Which mtr-packet's words to speak.
///
/// ```
/// use netloom_probe::mtr_packet::Dialect;
/// assert_eq!(Dialect::default(), Dialect::Current);
/// assert_eq!(Dialect::Mtr095.version(), "0.95");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Current mtr (0.96 on): an ICMP destination-unreachable is `no-route-host` with the
    /// responder; a local `ENETUNREACH` is `no-route-network`, `EHOSTUNREACH`
    /// `no-route-host`, `EHOSTDOWN` `host-down`.
    #[default]
    Current,
    /// mtr 0.95 (Debian 12's mtr-tiny): an ICMP destination-unreachable is `no-route` with
    /// the responder; a missing local route is `invalid-argument` (0.95 finds it while
    /// looking up the source address); `EHOSTDOWN` is `unexpected-error errno 112`.
    Mtr095,
}

impl Dialect {
    /// The answer to `check-support feature version`.
    ///
    /// ```
    /// assert_eq!(netloom_probe::mtr_packet::Dialect::Current.version(), "0.96");
    /// ```
    pub fn version(&self) -> &'static str {
        match self {
            Dialect::Current => "0.96",
            Dialect::Mtr095 => "0.95",
        }
    }
}

/// One reply line, before formatting.
///
/// ```
/// use netloom_probe::mtr_packet::{Dialect, Reply};
/// let mut out = String::new();
/// Reply::UnknownCommand { token: 5 }.write_line(Dialect::Current, &mut out);
/// assert_eq!(out, "5 unknown-command\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The outcome of a probe that was sent.
    Probe {
        /// The command's token.
        token: i32,
        /// What the engine found.
        reply: ProbeReply,
    },
    /// A probe that could not be sent.
    Error {
        /// The command's token.
        token: i32,
        /// Why.
        error: ErrorReply,
    },
    /// `feature-support support VALUE`.
    FeatureSupport {
        /// The command's token.
        token: i32,
        /// `ok`, `no`, or the version.
        support: &'static str,
    },
    /// `unknown-command`.
    UnknownCommand {
        /// The command's token.
        token: i32,
    },
    /// `0 command-parse-error`.
    CommandParseError,
    /// `0 command-buffer-overflow`.
    CommandBufferOverflow,
}

/// The error replies of a `send-probe` or `check-support`.
///
/// ```
/// use netloom_probe::mtr_packet::ErrorReply;
/// assert_eq!(ErrorReply::ProbesExhausted, ErrorReply::ProbesExhausted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReply {
    /// `invalid-argument`.
    InvalidArgument,
    /// `invalid-argument reason ip-version-not-supported`.
    IpVersionNotSupported,
    /// `invalid-argument reason protocol-not-supported`.
    ProtocolNotSupported,
    /// `probes-exhausted`.
    ProbesExhausted,
    /// `permission-denied`.
    PermissionDenied,
    /// `network-down`.
    NetworkDown,
    /// `no-route-network` (0.95: `invalid-argument`, as its source-address lookup fails).
    NoRouteNetwork,
    /// `no-route-host` (0.95: `invalid-argument`, likewise).
    NoRouteHost,
    /// `host-down` (0.95: `unexpected-error errno 112`).
    HostDown,
    /// `address-in-use`.
    AddressInUse,
    /// `address-not-available`.
    AddressNotAvailable,
    /// `unexpected-error errno N`.
    Unexpected {
        /// The errno.
        errno: i32,
    },
}

impl ErrorReply {
    /// The reply mtr-packet gives for an engine error.
    ///
    /// ```
    /// use netloom_probe::{ProbeError, mtr_packet::ErrorReply};
    /// let e = ProbeError::ProbesExhausted { limit: 1 };
    /// assert_eq!(ErrorReply::from_probe_error(&e), ErrorReply::ProbesExhausted);
    /// ```
    pub fn from_probe_error(error: &ProbeError) -> Self {
        match error {
            ProbeError::ProbesExhausted { .. } => ErrorReply::ProbesExhausted,
            ProbeError::PermissionDenied { .. } => ErrorReply::PermissionDenied,
            ProbeError::InvalidArgument { .. } | ProbeError::Resolve { .. } => {
                ErrorReply::InvalidArgument
            }
            ProbeError::NotSupported { .. } => ErrorReply::ProtocolNotSupported,
            ProbeError::NetworkDown { .. } => ErrorReply::NetworkDown,
            ProbeError::NoRoute {
                scope: RouteScope::Network,
                ..
            } => ErrorReply::NoRouteNetwork,
            ProbeError::NoRoute {
                scope: RouteScope::Host,
                ..
            } => ErrorReply::NoRouteHost,
            ProbeError::HostDown { .. } => ErrorReply::HostDown,
            ProbeError::AddressInUse { .. } => ErrorReply::AddressInUse,
            ProbeError::AddressNotAvailable { .. } => ErrorReply::AddressNotAvailable,
            ProbeError::Io { source, .. } => ErrorReply::from_io(source),
            #[allow(unreachable_patterns)]
            _ => ErrorReply::Unexpected { errno: libc::EIO },
        }
    }

    /// `report_packet_error()`: the reply for a raw errno.
    fn from_io(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EINVAL) => ErrorReply::InvalidArgument,
            Some(libc::ENETDOWN) => ErrorReply::NetworkDown,
            Some(libc::ENETUNREACH) => ErrorReply::NoRouteNetwork,
            Some(libc::EHOSTUNREACH) => ErrorReply::NoRouteHost,
            Some(libc::EHOSTDOWN) => ErrorReply::HostDown,
            Some(libc::EPERM) => ErrorReply::PermissionDenied,
            Some(libc::EADDRINUSE) => ErrorReply::AddressInUse,
            Some(libc::EADDRNOTAVAIL) => ErrorReply::AddressNotAvailable,
            Some(errno) => ErrorReply::Unexpected { errno },
            None => ErrorReply::Unexpected { errno: libc::EIO },
        }
    }

    fn write(&self, dialect: Dialect, out: &mut String) {
        let old = dialect == Dialect::Mtr095;
        let _ = match self {
            ErrorReply::InvalidArgument => write!(out, "invalid-argument"),
            ErrorReply::IpVersionNotSupported => {
                write!(out, "invalid-argument reason ip-version-not-supported")
            }
            ErrorReply::ProtocolNotSupported => {
                write!(out, "invalid-argument reason protocol-not-supported")
            }
            ErrorReply::ProbesExhausted => write!(out, "probes-exhausted"),
            ErrorReply::PermissionDenied => write!(out, "permission-denied"),
            ErrorReply::NetworkDown => write!(out, "network-down"),
            // mtr-packet 0.95 looks the source address up with a UDP connect() before
            // sending; when that finds no route it answers invalid-argument, so the errno
            // path to its "no-route" is practically never taken.
            ErrorReply::NoRouteNetwork | ErrorReply::NoRouteHost if old => {
                write!(out, "invalid-argument")
            }
            ErrorReply::NoRouteNetwork => write!(out, "no-route-network"),
            ErrorReply::NoRouteHost => write!(out, "no-route-host"),
            ErrorReply::HostDown if old => {
                write!(out, "unexpected-error errno {}", libc::EHOSTDOWN)
            }
            ErrorReply::HostDown => write!(out, "host-down"),
            ErrorReply::AddressInUse => write!(out, "address-in-use"),
            ErrorReply::AddressNotAvailable => write!(out, "address-not-available"),
            ErrorReply::Unexpected { errno } => write!(out, "unexpected-error errno {errno}"),
        };
    }
}

impl Reply {
    /// Appends the reply line, newline included, to `out`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netloom_probe::{Outcome, ProbeReply, mtr_packet::{Dialect, Reply}};
    /// let reply = ProbeReply {
    ///     outcome: Outcome::TtlExpired,
    ///     responder: Some("192.0.2.1".parse().unwrap()),
    ///     rtt: Some(Duration::from_micros(1634)),
    ///     mpls: vec![],
    /// };
    /// let mut out = String::new();
    /// Reply::Probe { token: 11, reply }.write_line(Dialect::Current, &mut out);
    /// assert_eq!(out, "11 ttl-expired ip-4 192.0.2.1 round-trip-time 1634\n");
    /// ```
    pub fn write_line(&self, dialect: Dialect, out: &mut String) {
        match self {
            Reply::Probe { token, reply } => write_probe(*token, reply, dialect, out),
            Reply::Error { token, error } => {
                let _ = write!(out, "{token} ");
                error.write(dialect, out);
            }
            Reply::FeatureSupport { token, support } => {
                let _ = write!(out, "{token} feature-support support {support}");
            }
            Reply::UnknownCommand { token } => {
                let _ = write!(out, "{token} unknown-command");
            }
            Reply::CommandParseError => out.push_str("0 command-parse-error"),
            Reply::CommandBufferOverflow => out.push_str("0 command-buffer-overflow"),
        }
        out.push('\n');
    }
}

fn write_probe(token: i32, reply: &ProbeReply, dialect: Dialect, out: &mut String) {
    let word = match reply.outcome {
        Outcome::Reply => "reply",
        Outcome::TtlExpired => "ttl-expired",
        Outcome::Unreachable(_) if dialect == Dialect::Mtr095 => "no-route",
        Outcome::Unreachable(_) => "no-route-host",
        Outcome::NoReply => {
            let _ = write!(out, "{token} no-reply");
            return;
        }
    };
    let Some(responder) = reply.responder else {
        // An answer without a responder cannot be reported with an address: mtr-packet
        // never prints one, so report what we know.
        let _ = write!(out, "{token} no-reply");
        return;
    };
    let ip = match responder {
        IpAddr::V4(_) => "ip-4",
        IpAddr::V6(_) => "ip-6",
    };
    // The hot line of a busy session: written without `fmt` machinery.
    push_int(out, i64::from(token));
    out.push(' ');
    out.push_str(word);
    out.push(' ');
    out.push_str(ip);
    out.push(' ');
    match responder {
        IpAddr::V4(a) => {
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_int(out, i64::from(octet));
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
    out.push_str(" round-trip-time ");
    push_int(out, i64::from(rtt_micros(reply.rtt)));
    if !reply.mpls.is_empty() {
        out.push_str(" mpls ");
        write_mpls(&reply.mpls, out);
    }
}

/// Appends `n` in decimal, as `{n}` would.
fn push_int(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for d in &digits[at..] {
        out.push(char::from(*d));
    }
}

/// The round-trip time as C's `%d` of an `unsigned int` microsecond count prints it: the
/// count wraps at 2^32 and is shown signed.
fn rtt_micros(rtt: Option<Duration>) -> i32 {
    let us = rtt.map_or(0, |d| d.as_micros());
    us as u32 as i32
}

/// `label,traffic-class,bottom-of-stack,ttl` per label, all joined by commas.
fn write_mpls(labels: &[MplsLabel], out: &mut String) {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{},{},{},{}",
            l.label,
            l.traffic_class,
            u8::from(l.bottom_of_stack),
            l.ttl
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnreachableKind;

    proptest::proptest! {
        #[test]
        fn push_int_writes_what_display_writes(n: i64) {
            let mut s = String::new();
            push_int(&mut s, n);
            proptest::prop_assert_eq!(s, n.to_string());
        }

        #[test]
        fn probe_lines_match_the_formatted_reference(token: i32, a: [u8; 4], us: u32) {
            let addr = IpAddr::from(a);
            let reply = ProbeReply {
                outcome: Outcome::TtlExpired,
                responder: Some(addr),
                rtt: Some(Duration::from_micros(u64::from(us))),
                mpls: vec![],
            };
            let mut s = String::new();
            Reply::Probe { token, reply }.write_line(Dialect::Current, &mut s);
            proptest::prop_assert_eq!(
                s,
                format!("{token} ttl-expired ip-4 {addr} round-trip-time {}\n", us as i32)
            );
        }
    }

    fn line(r: &Reply, d: Dialect) -> String {
        let mut s = String::new();
        r.write_line(d, &mut s);
        s
    }

    fn answered(outcome: Outcome, addr: &str, us: u64, mpls: Vec<MplsLabel>) -> ProbeReply {
        ProbeReply {
            outcome,
            responder: Some(addr.parse().expect("addr")),
            rtt: Some(Duration::from_micros(us)),
            mpls,
        }
    }

    #[test]
    fn probe_outcomes() {
        let r = Reply::Probe {
            token: 42,
            reply: answered(Outcome::Reply, "2001:db8::1", 126, vec![]),
        };
        assert_eq!(
            line(&r, Dialect::Current),
            "42 reply ip-6 2001:db8::1 round-trip-time 126\n"
        );
        let r = Reply::Probe {
            token: 1,
            reply: ProbeReply::no_reply(),
        };
        assert_eq!(line(&r, Dialect::Mtr095), "1 no-reply\n");
    }

    #[test]
    fn unreachable_in_both_dialects() {
        let r = Reply::Probe {
            token: 3,
            reply: answered(
                Outcome::Unreachable(UnreachableKind::Host),
                "10.0.0.1",
                5,
                vec![],
            ),
        };
        assert_eq!(
            line(&r, Dialect::Current),
            "3 no-route-host ip-4 10.0.0.1 round-trip-time 5\n"
        );
        assert_eq!(
            line(&r, Dialect::Mtr095),
            "3 no-route ip-4 10.0.0.1 round-trip-time 5\n"
        );
    }

    #[test]
    fn mpls_list() {
        let labels = vec![
            MplsLabel {
                label: 16001,
                traffic_class: 0,
                bottom_of_stack: false,
                ttl: 1,
            },
            MplsLabel {
                label: 16002,
                traffic_class: 5,
                bottom_of_stack: true,
                ttl: 255,
            },
        ];
        let r = Reply::Probe {
            token: 9,
            reply: answered(Outcome::TtlExpired, "10.0.0.1", 10, labels),
        };
        assert_eq!(
            line(&r, Dialect::Current),
            "9 ttl-expired ip-4 10.0.0.1 round-trip-time 10 mpls 16001,0,0,1,16002,5,1,255\n"
        );
    }

    #[test]
    fn errors_in_both_dialects() {
        let cases = [
            (
                ErrorReply::NoRouteHost,
                "7 no-route-host\n",
                "7 invalid-argument\n",
            ),
            (
                ErrorReply::NoRouteNetwork,
                "7 no-route-network\n",
                "7 invalid-argument\n",
            ),
            (
                ErrorReply::HostDown,
                "7 host-down\n",
                "7 unexpected-error errno 112\n",
            ),
            (
                ErrorReply::NetworkDown,
                "7 network-down\n",
                "7 network-down\n",
            ),
            (
                ErrorReply::IpVersionNotSupported,
                "7 invalid-argument reason ip-version-not-supported\n",
                "7 invalid-argument reason ip-version-not-supported\n",
            ),
            (
                ErrorReply::Unexpected { errno: 19 },
                "7 unexpected-error errno 19\n",
                "7 unexpected-error errno 19\n",
            ),
        ];
        for (error, current, old) in cases {
            let r = Reply::Error { token: 7, error };
            assert_eq!(line(&r, Dialect::Current), current);
            assert_eq!(line(&r, Dialect::Mtr095), old);
        }
        assert_eq!(
            line(&Reply::CommandParseError, Dialect::Current),
            "0 command-parse-error\n"
        );
        assert_eq!(
            line(&Reply::CommandBufferOverflow, Dialect::Mtr095),
            "0 command-buffer-overflow\n"
        );
    }

    #[test]
    fn errno_mapping_matches_report_packet_error() {
        let e = |n| ErrorReply::from_io(&io::Error::from_raw_os_error(n));
        assert_eq!(e(libc::EINVAL), ErrorReply::InvalidArgument);
        assert_eq!(e(libc::EPERM), ErrorReply::PermissionDenied);
        assert_eq!(e(libc::ENETUNREACH), ErrorReply::NoRouteNetwork);
        assert_eq!(
            e(libc::ENODEV),
            ErrorReply::Unexpected {
                errno: libc::ENODEV
            }
        );
    }

    #[test]
    fn huge_rtt_prints_like_c() {
        assert_eq!(rtt_micros(Some(Duration::from_secs(5000))), 705_032_704);
        assert_eq!(rtt_micros(Some(Duration::from_secs(3000))), -1_294_967_296);
        assert_eq!(rtt_micros(None), 0);
    }
}
