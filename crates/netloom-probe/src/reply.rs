//! What a probe found: [`ProbeReply`], [`Outcome`], [`UnreachableKind`], [`MplsLabel`].
use std::net::IpAddr;
use std::time::Duration;

/// Why a router or the target reported the destination unreachable (ICMP type 3 /
/// ICMPv6 type 1), for [`Outcome::Unreachable`].
///
/// A *port* unreachable is not listed: like mtr-packet, it means the probe arrived and is
/// reported as [`Outcome::Reply`].
///
/// ```
/// use netloom_probe::UnreachableKind;
/// assert_eq!(UnreachableKind::from_icmpv4_code(1), UnreachableKind::Host);
/// assert_eq!(UnreachableKind::from_icmpv6_code(1), UnreachableKind::AdminProhibited);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UnreachableKind {
    /// Network unreachable (v4 codes 0, 6, 11; v6 code 0 "no route").
    Network,
    /// Host unreachable (v4 codes 1, 7, 12; v6 code 3 "address unreachable").
    Host,
    /// Protocol unreachable (v4 code 2).
    Protocol,
    /// Fragmentation needed and DF set (v4 code 4), or an ICMPv6 "packet too big".
    FragmentationNeeded,
    /// Source route failed (v4 code 5).
    SourceRouteFailed,
    /// Administratively prohibited (v4 codes 9, 10, 13; v6 codes 1, 5, 6).
    AdminProhibited,
    /// Any other code (v4 14, 15; v6 2 "beyond scope of source"; unknown codes).
    Other {
        /// The ICMP code.
        code: u8,
    },
}

impl UnreachableKind {
    /// Classifies an ICMPv4 destination-unreachable code (not 3, port unreachable).
    ///
    /// ```
    /// use netloom_probe::UnreachableKind;
    /// assert_eq!(UnreachableKind::from_icmpv4_code(13), UnreachableKind::AdminProhibited);
    /// ```
    pub fn from_icmpv4_code(code: u8) -> Self {
        match code {
            0 | 6 | 11 => UnreachableKind::Network,
            1 | 7 | 12 => UnreachableKind::Host,
            2 => UnreachableKind::Protocol,
            4 => UnreachableKind::FragmentationNeeded,
            5 => UnreachableKind::SourceRouteFailed,
            9 | 10 | 13 => UnreachableKind::AdminProhibited,
            code => UnreachableKind::Other { code },
        }
    }

    /// Classifies an ICMPv6 destination-unreachable code (not 4, port unreachable).
    ///
    /// ```
    /// use netloom_probe::UnreachableKind;
    /// assert_eq!(UnreachableKind::from_icmpv6_code(3), UnreachableKind::Host);
    /// ```
    pub fn from_icmpv6_code(code: u8) -> Self {
        match code {
            0 => UnreachableKind::Network,
            3 => UnreachableKind::Host,
            1 | 5 | 6 => UnreachableKind::AdminProhibited,
            code => UnreachableKind::Other { code },
        }
    }
}

/// How a probe ended.
///
/// ```
/// use netloom_probe::Outcome;
/// assert!(Outcome::Reply.reached_target());
/// assert!(!Outcome::TtlExpired.reached_target());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
#[non_exhaustive]
pub enum Outcome {
    /// The probe reached the target: an echo reply, a port unreachable (UDP to a closed
    /// port), or a TCP SYN-ACK / RST.
    Reply,
    /// A router on the way sent time-exceeded: the TTL ran out.
    TtlExpired,
    /// Nothing came back before the timeout.
    NoReply,
    /// A router or the target reported the destination unreachable.
    Unreachable(UnreachableKind),
}

impl Outcome {
    /// True only for [`Outcome::Reply`]: the probe arrived at the target host.
    ///
    /// ```
    /// use netloom_probe::Outcome;
    /// assert!(!Outcome::NoReply.reached_target());
    /// ```
    pub fn reached_target(&self) -> bool {
        matches!(self, Outcome::Reply)
    }
}

/// One MPLS label stack entry quoted by a router (RFC 4950).
///
/// ```
/// use netloom_probe::MplsLabel;
/// let l = MplsLabel::from_entry([0x00, 0x01, 0x41, 0x05]);
/// assert_eq!((l.label, l.traffic_class, l.bottom_of_stack, l.ttl), (20, 0, true, 5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct MplsLabel {
    /// The 20-bit label.
    pub label: u32,
    /// The 3-bit traffic class (formerly "experimental use").
    pub traffic_class: u8,
    /// Set on the last entry of the stack.
    pub bottom_of_stack: bool,
    /// The entry's TTL.
    pub ttl: u8,
}

impl MplsLabel {
    /// Decodes one 4-byte label stack entry.
    ///
    /// ```
    /// use netloom_probe::MplsLabel;
    /// assert_eq!(MplsLabel::from_entry([0xff, 0xff, 0xfe, 1]).label, 0xfffff);
    /// ```
    pub fn from_entry(b: [u8; 4]) -> Self {
        MplsLabel {
            label: (u32::from(b[0]) << 12) | (u32::from(b[1]) << 4) | (u32::from(b[2]) >> 4),
            traffic_class: (b[2] >> 1) & 0x07,
            bottom_of_stack: b[2] & 0x01 == 1,
            ttl: b[3],
        }
    }

    /// Encodes this entry as 4 bytes (the label is truncated to 20 bits).
    ///
    /// ```
    /// use netloom_probe::MplsLabel;
    /// let e = [0x12, 0x34, 0x5b, 0x40];
    /// assert_eq!(MplsLabel::from_entry(e).to_entry(), e);
    /// ```
    pub fn to_entry(&self) -> [u8; 4] {
        let label = self.label & 0xfffff;
        [
            (label >> 12) as u8,
            (label >> 4) as u8,
            ((label as u8 & 0x0f) << 4)
                | ((self.traffic_class & 0x07) << 1)
                | u8::from(self.bottom_of_stack),
            self.ttl,
        ]
    }
}

/// mtr's notation: `Lbl 24001 TC 5 S 0 TTL 1`.
///
/// ```
/// use netloom_probe::MplsLabel;
/// let l = MplsLabel { label: 24001, traffic_class: 5, bottom_of_stack: false, ttl: 1 };
/// assert_eq!(l.to_string(), "Lbl 24001 TC 5 S 0 TTL 1");
/// ```
impl std::fmt::Display for MplsLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lbl {} TC {} S {} TTL {}",
            self.label,
            self.traffic_class,
            u8::from(self.bottom_of_stack),
            self.ttl
        )
    }
}

/// The result of one probe.
///
/// `responder` and `rtt` are set for every outcome except [`Outcome::NoReply`].
///
/// ```
/// use netloom_probe::{Outcome, ProbeReply};
/// let r = ProbeReply::no_reply();
/// assert_eq!(r.outcome, Outcome::NoReply);
/// assert!(r.responder.is_none() && r.rtt.is_none() && r.mpls.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeReply {
    /// How the probe ended.
    pub outcome: Outcome,
    /// Who answered (the target, or the router that sent time-exceeded / unreachable).
    pub responder: Option<IpAddr>,
    /// Round-trip time: from the send to the kernel's receive timestamp (SO_TIMESTAMPNS)
    /// when that is plausible, else between monotonic clock readings at send and receive.
    pub rtt: Option<Duration>,
    /// MPLS label stack from an RFC 4950 extension in the ICMP error, outermost first.
    pub mpls: Vec<MplsLabel>,
}

impl ProbeReply {
    /// A reply for a probe that timed out.
    ///
    /// ```
    /// use netloom_probe::ProbeReply;
    /// assert!(!ProbeReply::no_reply().outcome.reached_target());
    /// ```
    pub fn no_reply() -> Self {
        ProbeReply {
            outcome: Outcome::NoReply,
            responder: None,
            rtt: None,
            mpls: Vec::new(),
        }
    }
}
