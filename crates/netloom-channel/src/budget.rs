//! A memory budget shared by many channels: bytes buffered across connections.
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ChannelError;

/// The budget a [`ServerBootstrap`](crate::ServerBootstrap) gives its connections unless
/// told otherwise: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// Bytes buffered across connections, with a limit. Decoders
/// ([`DecoderHandler`](crate::DecoderHandler), [`FramingHandler`](crate::FramingHandler))
/// charge the bytes they hold while a frame is incomplete; a connection whose read would
/// take the total over the limit is closed with [`ChannelError::LimitExceeded`] naming
/// `memory_budget` — so 300 connections each sending an unfinished 8 MiB frame cannot
/// take 2.4 GB. Set through [`ChannelOptions::memory_budget`](crate::ChannelOptions::memory_budget)
/// or [`ServerBootstrap::memory_budget`](crate::ServerBootstrap::memory_budget); clones
/// share one budget.
///
/// ```
/// use netloom_channel::MemoryBudget;
/// let budget = MemoryBudget::new(1000);
/// assert!(budget.try_charge(600).is_ok());
/// let err = budget.try_charge(600).unwrap_err();
/// assert!(err.to_string().contains("memory_budget"));
/// budget.release(600);
/// assert_eq!(budget.used(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryBudget(Arc<Inner>);

struct Inner {
    used: AtomicUsize,
    limit: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    ///
    /// ```
    /// assert_eq!(netloom_channel::MemoryBudget::new(4096).limit(), 4096);
    /// ```
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget(Arc::new(Inner {
            used: AtomicUsize::new(0),
            limit,
        }))
    }

    /// The limit in bytes.
    ///
    /// ```
    /// assert_eq!(netloom_channel::MemoryBudget::new(1).limit(), 1);
    /// ```
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Bytes charged now.
    ///
    /// ```
    /// assert_eq!(netloom_channel::MemoryBudget::new(1).used(), 0);
    /// ```
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// Charges `n` bytes, or fails (charging nothing) when that would pass the limit.
    ///
    /// ```
    /// let b = netloom_channel::MemoryBudget::new(10);
    /// assert!(b.try_charge(10).is_ok());
    /// assert!(b.try_charge(1).is_err());
    /// ```
    pub fn try_charge(&self, n: usize) -> Result<(), ChannelError> {
        let before = self.0.used.fetch_add(n, Ordering::Relaxed);
        if before + n > self.0.limit {
            self.0.used.fetch_sub(n, Ordering::Relaxed);
            return Err(ChannelError::LimitExceeded {
                limit: "memory_budget",
                value: before + n,
                max: self.0.limit,
            });
        }
        Ok(())
    }

    /// Gives back `n` charged bytes.
    ///
    /// ```
    /// let b = netloom_channel::MemoryBudget::new(10);
    /// b.try_charge(4).unwrap();
    /// b.release(4);
    /// assert_eq!(b.used(), 0);
    /// ```
    pub fn release(&self, n: usize) {
        self.0.used.fetch_sub(n, Ordering::Relaxed);
    }
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("used", &self.used())
            .field("limit", &self.limit())
            .finish()
    }
}
