//! Per-channel options.
use std::time::Duration;

use crate::ChannelError;

/// Socket and flow-control options of a channel. Build with struct update syntax.
///
/// ```
/// use netloom_channel::ChannelOptions;
/// let opts = ChannelOptions { auto_read: false, ..ChannelOptions::default() };
/// assert!(opts.validate().is_ok());
/// assert_eq!(opts.write_buffer_high_water_mark, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// `TCP_NODELAY` (default on).
    pub tcp_nodelay: bool,
    /// `SO_KEEPALIVE` with this idle time (default off).
    pub tcp_keepalive: Option<Duration>,
    /// `SO_SNDBUF` (default: the system's).
    pub send_buffer_size: Option<usize>,
    /// `SO_RCVBUF` (default: the system's).
    pub recv_buffer_size: Option<usize>,
    /// `TCP_NOTSENT_LOWAT` (Linux, TCP only): the kernel takes more data only while less
    /// than this many bytes wait unsent in its send queue, so back-pressure shows in the
    /// channel's writability instead of megabytes queued in the kernel (default: the
    /// system's, which is no limit).
    pub tcp_notsent_lowat: Option<u32>,
    /// What each pending outbound message counts beyond its bytes towards the water marks
    /// (default 96 bytes, Netty's figure for an outbound buffer entry). Without it, a peer
    /// that makes the server write many tiny messages (an echo of empty lines) holds far
    /// more memory than the marks say. At most 64 KiB.
    pub write_message_overhead: usize,
    /// Pending outbound bytes above which the channel becomes unwritable (default 64 KiB).
    pub write_buffer_high_water_mark: usize,
    /// Pending outbound bytes below which it becomes writable again (default 32 KiB).
    pub write_buffer_low_water_mark: usize,
    /// Read as soon as data arrives (default on); off stops reading until turned on.
    pub auto_read: bool,
    /// Reads per wakeup before yielding to other channels of the loop (default 16).
    pub max_reads_per_poll: usize,
    /// Stop reading while this channel is unwritable (default off). Right for a server
    /// that answers on the channel it reads from (an echo): its own pending answers are
    /// the backpressure, and reading on would pile up input without bound (under a flood
    /// of tiny frames). Wrong for a channel whose input goes to *another* channel (a
    /// forwarder or proxy): there the other side's writability must govern reading
    /// (`set_auto_read`), and pausing on its own would deadlock two channels that each
    /// wait for the other to read.
    pub pause_reads_while_unwritable: bool,
    /// Bytes read per system call at most (default 128 KiB). Together with the write cap
    /// below, bulk echoes cost the least CPU per byte with it; see docs/benchmarks.md.
    /// Reads are slices of one buffer per event loop: a slice a handler keeps (instead of
    /// copying, as the codec handlers do) keeps up to this much of that buffer allocated.
    pub read_chunk_size: usize,
    /// Bytes one write system call offers at most, gathered from the pending buffers
    /// (Netty's `maxBytesPerGatheringWrite`; default 63 KiB). Writes of 64 KiB and more do
    /// not fit one TCP segment on loopback (MTU 64 KiB): under BBR they cost ~40% more
    /// server CPU per message in the streaming benchmark; under cubic, uncapped writes
    /// cost 5-18% less than 63 KiB ones (see docs/benchmarks.md). Datagrams are always
    /// written whole.
    pub max_bytes_per_gathering_write: usize,
    /// Connect timeout of `Bootstrap::connect` (default 30 s).
    pub connect_timeout: Duration,
    /// How long a graceful close waits for pending writes before forcing (default 30 s).
    pub graceful_close_timeout: Duration,
    /// When the peer ends its output (TCP FIN), keep the channel open and fire
    /// [`UserEvent::InputShutdown`](crate::UserEvent::InputShutdown) instead of closing
    /// (Netty's `ALLOW_HALF_CLOSURE`; default off). The channel then closes when it is
    /// closed, or when its own output is shut down ([`CloseMode::Output`](crate::CloseMode::Output)).
    pub allow_half_closure: bool,
    /// Close the channel (with [`ChannelError::IdleTimeout`] to its pipeline) after this
    /// long without a read or a write: slowloris clients and peers that vanished without
    /// a FIN. Default off; at most [`ChannelOptions::MAX_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// The budget of bytes buffered across connections that this channel's decoders
    /// charge (see [`MemoryBudget`](crate::MemoryBudget)). Default `None`: a
    /// [`ServerBootstrap`](crate::ServerBootstrap) then gives its connections its own
    /// shared budget ([`DEFAULT_MEMORY_BUDGET`](crate::DEFAULT_MEMORY_BUDGET) unless set).
    pub memory_budget: Option<crate::MemoryBudget>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            tcp_nodelay: true,
            tcp_keepalive: None,
            send_buffer_size: None,
            recv_buffer_size: None,
            tcp_notsent_lowat: None,
            write_message_overhead: 96,
            write_buffer_high_water_mark: 64 * 1024,
            write_buffer_low_water_mark: 32 * 1024,
            auto_read: true,
            max_reads_per_poll: 16,
            pause_reads_while_unwritable: false,
            read_chunk_size: 128 * 1024,
            max_bytes_per_gathering_write: 63 * 1024,
            connect_timeout: Duration::from_secs(30),
            graceful_close_timeout: Duration::from_secs(30),
            allow_half_closure: false,
            idle_timeout: None,
            memory_budget: None,
        }
    }
}

impl ChannelOptions {
    /// The longest timeout accepted by the options that take one (1 day).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

    /// Checks the options; the error names the offending option.
    ///
    /// ```
    /// use netloom_channel::ChannelOptions;
    /// let bad = ChannelOptions { write_buffer_low_water_mark: 1 << 20, ..Default::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("write_buffer_low_water_mark"));
    /// ```
    pub fn validate(&self) -> Result<(), ChannelError> {
        if self.write_buffer_low_water_mark > self.write_buffer_high_water_mark {
            return Err(ChannelError::InvalidOption {
                name: "write_buffer_low_water_mark",
                reason: format!(
                    "{} is above write_buffer_high_water_mark {}",
                    self.write_buffer_low_water_mark, self.write_buffer_high_water_mark
                ),
            });
        }
        if self.max_reads_per_poll == 0 {
            return Err(ChannelError::InvalidOption {
                name: "max_reads_per_poll",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_bytes_per_gathering_write == 0 {
            return Err(ChannelError::InvalidOption {
                name: "max_bytes_per_gathering_write",
                reason: "must be at least 1".into(),
            });
        }
        if self.write_message_overhead > 64 * 1024 {
            return Err(ChannelError::InvalidOption {
                name: "write_message_overhead",
                reason: format!(
                    "{} is above the maximum of 65536 bytes",
                    self.write_message_overhead
                ),
            });
        }
        for (name, value) in [
            ("idle_timeout", self.idle_timeout),
            ("tcp_keepalive", self.tcp_keepalive),
        ] {
            match value {
                Some(d) if d.is_zero() => {
                    return Err(ChannelError::InvalidOption {
                        name,
                        reason: "must be above zero (None turns it off)".into(),
                    });
                }
                Some(d) if d > Self::MAX_TIMEOUT => {
                    return Err(ChannelError::InvalidOption {
                        name,
                        reason: format!("{d:?} is above the maximum of {:?}", Self::MAX_TIMEOUT),
                    });
                }
                _ => {}
            }
        }
        if self.read_chunk_size < 64 {
            return Err(ChannelError::InvalidOption {
                name: "read_chunk_size",
                reason: format!("{} is below the minimum of 64 bytes", self.read_chunk_size),
            });
        }
        Ok(())
    }
}
