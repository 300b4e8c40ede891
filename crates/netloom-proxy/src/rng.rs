//! Seeded randomness: every random decision of the proxy (toxicity, jitter, slicer sizes)
//! comes from a [`Rng`] derived from the server seed and the names of what it decides
//! for, so the same seed and the same traffic give the same decisions whatever the thread
//! interleaving.
use std::hash::{Hash, Hasher};

/// A small SplitMix64 generator (fast, not cryptographic).
///
/// ```
/// use netloom_proxy::Rng;
/// let mut a = Rng::derive(7, &("proxy", 1u64, "latency_downstream"));
/// let mut b = Rng::derive(7, &("proxy", 1u64, "latency_downstream"));
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    ///
    /// ```
    /// assert_ne!(netloom_proxy::Rng::new(1).next_u64(), netloom_proxy::Rng::new(2).next_u64());
    /// ```
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one decision point: `seed` mixed with a stable hash of `key`.
    ///
    /// ```
    /// use netloom_proxy::Rng;
    /// let x = Rng::derive(1, &"a").next_u64();
    /// assert_ne!(x, Rng::derive(1, &"b").next_u64());
    /// ```
    pub fn derive(seed: u64, key: &impl Hash) -> Rng {
        // SipHash with fixed keys: stable across runs (unlike RandomState).
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(0x6e65_746c, 0x6f6f_6d21);
        key.hash(&mut h);
        let mut r = Rng(seed ^ h.finish());
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// let mut r = netloom_proxy::Rng::new(0);
    /// assert_ne!(r.next_u64(), r.next_u64());
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    ///
    /// ```
    /// let x = netloom_proxy::Rng::new(3).next_f64();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in `[-span, span]`.
    ///
    /// ```
    /// let x = netloom_proxy::Rng::new(3).symmetric(5);
    /// assert!((-5..=5).contains(&x));
    /// ```
    pub fn symmetric(&mut self, span: u64) -> i64 {
        if span == 0 {
            return 0;
        }
        let width = span.saturating_mul(2).saturating_add(1);
        (self.next_u64() % width) as i64 - span as i64
    }

    /// `true` with probability `p` (never for `p <= 0`, always for `p >= 1`).
    ///
    /// ```
    /// let mut r = netloom_proxy::Rng::new(3);
    /// assert!(!r.chance(0.0));
    /// assert!(r.chance(1.0));
    /// ```
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}
