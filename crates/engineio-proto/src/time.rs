//! Time as an input.
//!
//! The state machines never read a clock. The caller owns one (tokio, smol, a
//! game loop, a test's virtual clock) and passes the current [`Instant`] into
//! every call that can move time. An `Instant` is a duration since an epoch the
//! caller chooses; only differences between instants matter.

use core::marker::PhantomData;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic clock, measured from an arbitrary epoch.
///
/// Drivers map their own clock onto it, typically
/// `Instant::from_duration(std_now - start)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_epoch` after the caller's epoch.
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Instant(since_epoch)
    }

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(Duration::from_millis(millis))
    }

    /// How far this instant lies from the epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates instead of overflowing: a deadline past the end of time never fires.
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the epoch.
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// The earliest of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(10);
        assert_eq!(t + Duration::from_millis(5), Instant::from_millis(15));
        assert_eq!(Instant::from_millis(3) - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(3), Duration::from_millis(7));
        let far = Instant::from_duration(Duration::MAX);
        assert_eq!(far + Duration::from_secs(1), far);
    }

    #[test]
    fn earliest_picks_the_minimum() {
        let a = Some(Instant::from_millis(1));
        let b = Some(Instant::from_millis(2));
        assert_eq!(earliest(a, b), a);
        assert_eq!(earliest(None, b), b);
        assert_eq!(earliest(a, None), a);
        assert_eq!(earliest(None, None), None);
    }
}

/// The timers of one machine, as a fieldless enum: each variant is a slot
/// of its [`TimerTable`].
///
/// Implement it with `COUNT` the number of variants and `slot` the
/// variant's discriminant; the table checks at compile time that its size
/// is `COUNT`.
pub trait TimerKind: Copy {
    /// How many timers the machine has.
    const COUNT: usize;
    /// This timer's slot, below `COUNT`.
    fn slot(self) -> usize;
}

/// A machine's timers: one optional deadline per variant of its [`TimerKind`]
/// enum, `N` of them (`N` must equal `T::COUNT`).
///
/// Machines keep a fixed, small set of timers, so a table of `Option`s beats a
/// heap: setting, clearing and finding the next deadline are all O(slots),
/// with no allocation.
#[derive(Debug, Clone)]
pub struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    kind: PhantomData<T>,
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        const { assert!(T::COUNT == N, "a timer table has one slot per timer") };
        TimerTable {
            deadlines: [None; N],
            kind: PhantomData,
        }
    }
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// Arms `timer` for `at`, replacing its previous deadline.
    pub fn set(&mut self, timer: T, at: Instant) {
        self.deadlines[timer.slot()] = Some(at);
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.deadlines[timer.slot()]
    }

    /// Disarms `timer`.
    pub fn clear(&mut self, timer: T) {
        self.deadlines[timer.slot()] = None;
    }

    /// Disarms every timer.
    pub fn clear_all(&mut self) {
        self.deadlines = [None; N];
    }

    /// The earliest deadline of all timers.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().copied().fold(None, earliest)
    }

    /// Disarms `timer` and returns its deadline when that is at or before
    /// `now` (the deadline, not `now`: a machine woken late can still
    /// schedule what follows from when the timer was due).
    pub fn take_expired(&mut self, timer: T, now: Instant) -> Option<Instant> {
        let slot = &mut self.deadlines[timer.slot()];
        match *slot {
            Some(at) if at <= now => slot.take(),
            _ => None,
        }
    }
}
