//! Rate-limited warnings: a peer that sends a million malformed frames, or a server out of
//! file descriptors, must not turn into a million log lines.
use std::time::{Duration, Instant};

/// At most one line per `PERIOD` per limiter; the lines in between are counted.
const PERIOD: Duration = Duration::from_secs(1);

/// One limiter per source of repeated warnings (a connection's decoder, an accept loop).
#[derive(Default)]
pub(crate) struct LogLimit {
    next: Option<Instant>,
    suppressed: u64,
    total: u64,
}

impl LogLimit {
    /// Counts an occurrence; `Some(n)` when a line may be logged now, `n` being the
    /// occurrences suppressed since the last line.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.total += 1;
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + PERIOD);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Occurrences counted so far and those not logged yet (for a summary at the end).
    pub(crate) fn finish(&mut self) -> (u64, u64) {
        (self.total, std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_rest_counted() {
        let mut limit = LogLimit::default();
        assert_eq!(limit.hit(), Some(0));
        for _ in 0..999 {
            assert_eq!(limit.hit(), None);
        }
        assert_eq!(limit.finish(), (1000, 999));
        assert_eq!(limit.finish(), (1000, 0));
    }
}
