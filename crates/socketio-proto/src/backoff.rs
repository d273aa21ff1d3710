//! Reconnection delays: exponential backoff with jitter, as Node's client
//! computes them, and the injected randomness they need.
//!
//! Node (backo2): `ms = min · 2^attempt`; with `rand` uniform in [0, 1),
//! `deviation = ⌊rand · factor · ms⌋`, subtracted when `⌊rand · 10⌋` is even
//! and added when odd; the result is capped at `max`. The same arithmetic is
//! done here in integers (no floating-point `floor` in `core`).

use core::time::Duration;

/// A source of random numbers, injected so that state machines stay
/// deterministic under test. Runtime crates use a real generator.
pub trait RandomSource {
    /// A uniformly distributed 32-bit number.
    fn next_u32(&mut self) -> u32;
}

impl<F: FnMut() -> u32> RandomSource for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// A small deterministic generator (xorshift64*) for tests and simulators.
/// Not for anything that needs unpredictability.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// A generator starting from `seed` (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
}

impl RandomSource for SeededRandom {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

/// Exponential backoff between reconnection attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    /// The randomization factor in thousandths (Node's 0.5 is 500).
    jitter_permille: u64,
    attempts: u32,
}

impl Backoff {
    /// Delays from `min` doubling up to `max`, randomized by `factor`
    /// (0 to 1; Node's defaults are 1 s, 5 s and 0.5).
    pub fn new(min: Duration, max: Duration, factor: f64) -> Backoff {
        let clamped = if factor.is_nan() {
            0.0
        } else {
            factor.clamp(0.0, 1.0)
        };
        Backoff {
            min_ms: duration_ms(min),
            max_ms: duration_ms(max),
            jitter_permille: (clamped * 1000.0) as u64,
            attempts: 0,
        }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from the minimum delay (after a successful connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The delay before the next attempt; counts the attempt.
    pub fn next_delay(&mut self, random: &mut impl RandomSource) -> Duration {
        let shift = self.attempts.min(40);
        self.attempts = self.attempts.saturating_add(1);
        let ms = u128::from(self.min_ms) << shift;
        let ms = if self.jitter_permille == 0 {
            ms
        } else {
            // rand = r / 2^32, so ⌊rand · f · ms⌋ = ⌊r · f‰ · ms / (1000 · 2^32)⌋.
            let r = u128::from(random.next_u32());
            let deviation = (r * u128::from(self.jitter_permille) * ms) / (1000u128 << 32);
            let even = ((r * 10) >> 32) & 1 == 0;
            if even {
                ms - deviation
            } else {
                ms + deviation
            }
        };
        Duration::from_millis(ms.min(u128::from(self.max_ms)) as u64)
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_defaults() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 0.5)
    }

    /// A source that always returns the same number.
    fn fixed(r: u32) -> impl RandomSource {
        move || r
    }

    #[test]
    fn matches_nodes_formula() {
        // rand = 0.25: ⌊2.5⌋ = 2 is even → subtract 0.25·0.5·ms.
        let quarter = 1u32 << 30;
        let mut b = node_defaults();
        let delays: alloc::vec::Vec<u64> = (0..5)
            .map(|_| b.next_delay(&mut fixed(quarter)).as_millis() as u64)
            .collect();
        assert_eq!(delays, [875, 1750, 3500, 5000, 5000]);
        // rand = 0.75: ⌊7.5⌋ = 7 is odd → add 0.375·ms, capped.
        let three_quarters = 3u32 << 30;
        let mut b = node_defaults();
        let delays: alloc::vec::Vec<u64> = (0..3)
            .map(|_| b.next_delay(&mut fixed(three_quarters)).as_millis() as u64)
            .collect();
        assert_eq!(delays, [1375, 2750, 5000]);
        assert_eq!(b.attempts(), 3);
        b.reset();
        assert_eq!(b.next_delay(&mut fixed(0)), Duration::from_secs(1));
    }

    #[test]
    fn stays_within_bounds_for_any_randomness() {
        let mut random = SeededRandom::new(7);
        let mut b = node_defaults();
        for attempt in 0..200 {
            let d = b.next_delay(&mut random);
            assert!(d <= Duration::from_secs(5), "attempt {attempt}: {d:?}");
            assert!(d >= Duration::from_millis(500), "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn no_jitter_is_plain_doubling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.0);
        let delays: alloc::vec::Vec<u64> = (0..5)
            .map(|_| b.next_delay(&mut fixed(123)).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000]);
    }
}
