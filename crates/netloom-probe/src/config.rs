//! Prober-wide settings: [`ProberConfig`] and [`PrivilegeMode`].

/// Which sockets the prober opens.
///
/// ```
/// use netloom_probe::PrivilegeMode;
/// assert_eq!(PrivilegeMode::default(), PrivilegeMode::Auto);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PrivilegeMode {
    /// Raw sockets when permitted (CAP_NET_RAW), otherwise unprivileged.
    #[default]
    Auto,
    /// Raw sockets only; opening fails with
    /// [`ProbeError::PermissionDenied`](crate::ProbeError::PermissionDenied) without CAP_NET_RAW.
    Raw,
    /// ICMP datagram sockets (allowed by `net.ipv4.ping_group_range`) and UDP/TCP sockets,
    /// with errors read through `IP_RECVERR` / `IPV6_RECVERR`. No MPLS labels in this mode.
    Unprivileged,
}

/// Settings of a [`Prober`](crate::Prober). Every limit is enforced with an error naming it.
///
/// ```
/// use netloom_probe::ProberConfig;
/// let config = ProberConfig { max_in_flight: 50_000, ..Default::default() };
/// assert_eq!(ProberConfig::default().max_in_flight, 16_384);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProberConfig {
    /// Most probes outstanding at once; more fail with
    /// [`ProbeError::ProbesExhausted`](crate::ProbeError::ProbesExhausted). At most 65,536
    /// per protocol and IP version (the 16-bit sequence space). Default 16,384.
    pub max_in_flight: usize,
    /// Raw or unprivileged sockets.
    pub privilege: PrivilegeMode,
    /// Largest probe packet accepted in [`ProbeOptions::size`](crate::ProbeOptions::size)
    /// (default 9,000 bytes, mtr-packet's buffer).
    pub max_packet_size: usize,
    /// Raise the soft `RLIMIT_NOFILE` to the hard limit when opening, so thousands of TCP
    /// probes (one socket each) fit (default true).
    pub raise_fd_limit: bool,
    /// Raw mode: receive ICMP answers through a packet socket's memory-mapped ring
    /// (`PACKET_RX_RING`, no system call per answer) instead of reading the raw ICMP
    /// socket, when the ring can be set up (default true). The ring has a 2 KiB frame per
    /// probe [`max_in_flight`](Self::max_in_flight) allows plus an eighth (at least 4 MiB,
    /// at most 256 MiB of kernel memory per IP version; 36 MiB at the default), so every
    /// answer of a full burst fits (with the ring, `max_in_flight` above 116,508 is
    /// refused at open); answers larger than a frame (up to
    /// [`max_packet_size`](Self::max_packet_size)) are read whole from a copy the kernel
    /// queues on the packet socket (8 MiB receive buffer).
    pub receive_ring: bool,
    /// ICMP echo sequence numbers. `None` (default): each IP version starts at a random
    /// number and cycles through all 65,536. `Some(first..=last)`: the first ICMP probe
    /// carries `first`, each next one (IPv4 and IPv6 share the counter) the next number,
    /// back to `first` after `last`; a number still in flight is skipped. mtr-packet 0.95
    /// numbers its probes `33000..=65535` this way, and mtr's test harness finds a probe by
    /// it. An empty range fails [`Prober::open`](crate::Prober::open) with
    /// [`ProbeError::InvalidArgument`](crate::ProbeError::InvalidArgument).
    ///
    /// ```
    /// use netloom_probe::ProberConfig;
    /// let mtr = ProberConfig { icmp_sequence: Some(33_000..=65_535), ..Default::default() };
    /// assert_eq!(ProberConfig::default().icmp_sequence, None);
    /// # let _ = mtr;
    /// ```
    pub icmp_sequence: Option<std::ops::RangeInclusive<u16>>,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            max_in_flight: 16_384,
            privilege: PrivilegeMode::Auto,
            max_packet_size: 9_000,
            raise_fd_limit: true,
            receive_ring: true,
            icmp_sequence: None,
        }
    }
}
