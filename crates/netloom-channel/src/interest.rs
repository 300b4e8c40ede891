//! Which callbacks a handler implements, so the pipeline can pass the others by.
use std::fmt;
use std::ops::BitOr;

/// The set of callbacks a [`Handler`](crate::Handler) implements — Netty's handler mask
/// (its `@Skip`). The pipeline reads [`Handler::interest`](crate::Handler::interest) once,
/// when the handler is added, and passes events the handler does not list straight to the
/// next handler that does, without calling it. Skipping is only a shortcut: every
/// callback's default passes the event on, so a handler that lists everything (the
/// default, [`Interest::ALL`]) behaves the same, one call slower per event. Order is kept:
/// while events wait in the pipeline's queue, new ones go hop by hop as the defaults would,
/// so none overtakes another (a flush never passes the write before it).
///
/// A handler must list every callback it overrides: one it leaves out is never called.
/// `handler_added`, `timer_expired` and `resumed` are addressed to one handler and are
/// always delivered.
///
/// ```
/// use netloom_channel::{Context, Handler, HandlerResult, Interest, Msg};
///
/// /// Counts inbound messages; every other event passes it by.
/// struct Counter(usize);
///
/// impl Handler for Counter {
///     fn interest(&self) -> Interest {
///         Interest::READ
///     }
///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
///         self.0 += 1;
///         ctx.fire_channel_read(msg);
///         Ok(())
///     }
/// }
/// assert!(Counter(0).interest().contains(Interest::READ));
/// assert!(!Counter(0).interest().contains(Interest::READ_COMPLETE));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u16);

impl Interest {
    /// `channel_registered`.
    pub const REGISTERED: Interest = Interest(1 << 0);
    /// `channel_unregistered`.
    pub const UNREGISTERED: Interest = Interest(1 << 1);
    /// `channel_active`.
    pub const ACTIVE: Interest = Interest(1 << 2);
    /// `channel_inactive`.
    pub const INACTIVE: Interest = Interest(1 << 3);
    /// `channel_read`.
    pub const READ: Interest = Interest(1 << 4);
    /// `channel_read_complete`.
    pub const READ_COMPLETE: Interest = Interest(1 << 5);
    /// `channel_writability_changed`.
    pub const WRITABILITY: Interest = Interest(1 << 6);
    /// `user_event`.
    pub const USER_EVENT: Interest = Interest(1 << 7);
    /// `exception_caught`.
    pub const EXCEPTION: Interest = Interest(1 << 8);
    /// `write` (outbound).
    pub const WRITE: Interest = Interest(1 << 9);
    /// `flush` (outbound).
    pub const FLUSH: Interest = Interest(1 << 10);
    /// `close` (outbound).
    pub const CLOSE: Interest = Interest(1 << 11);
    /// No callback (only the always-delivered `handler_added`, `timer_expired`,
    /// `resumed`).
    pub const NONE: Interest = Interest(0);
    /// Every callback: the default, for handlers that do not say.
    pub const ALL: Interest = Interest((1 << 12) - 1);
    /// Every inbound callback.
    pub const INBOUND: Interest = Interest((1 << 9) - 1);
    /// Every outbound operation.
    pub const OUTBOUND: Interest = Interest(Self::ALL.0 & !Self::INBOUND.0);

    /// Both sets.
    ///
    /// ```
    /// use netloom_channel::Interest;
    /// let i = Interest::READ.union(Interest::WRITE);
    /// assert_eq!(i, Interest::READ | Interest::WRITE);
    /// ```
    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Whether every callback in `other` is in `self`.
    ///
    /// ```
    /// use netloom_channel::Interest;
    /// assert!(Interest::ALL.contains(Interest::FLUSH | Interest::READ));
    /// assert!(!Interest::INBOUND.contains(Interest::FLUSH));
    /// ```
    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the sets share a callback.
    pub(crate) const fn intersects(self, other: Interest) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.union(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 12] = [
            "REGISTERED",
            "UNREGISTERED",
            "ACTIVE",
            "INACTIVE",
            "READ",
            "READ_COMPLETE",
            "WRITABILITY",
            "USER_EVENT",
            "EXCEPTION",
            "WRITE",
            "FLUSH",
            "CLOSE",
        ];
        let mut set = f.debug_set();
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_and_outbound_split_all() {
        assert_eq!(Interest::INBOUND | Interest::OUTBOUND, Interest::ALL);
        assert!(!Interest::INBOUND.intersects(Interest::OUTBOUND));
        assert!(Interest::OUTBOUND.contains(Interest::WRITE | Interest::FLUSH | Interest::CLOSE));
        assert!(Interest::INBOUND.contains(Interest::EXCEPTION | Interest::REGISTERED));
    }

    #[test]
    fn debug_names_the_callbacks() {
        assert_eq!(
            format!("{:?}", Interest::READ | Interest::FLUSH),
            "{READ, FLUSH}"
        );
    }
}
