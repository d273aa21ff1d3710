//! Acks a machine awaits, the same way on both sides: one table of awaited
//! acks with their deadlines, and one vocabulary for those that will not
//! come ([`AckError`]).
//!
//! The server's [`crate::server::Connection`] keys its table by [`AckId`]
//! (one id space per connection), the client's
//! [`crate::client::ClientConnection`] by namespace and id (one id space
//! per namespace socket). Both report an answer as `Output::Ack` and a
//! failure as `Output::AckFailed`, and both fail every ack of a socket that
//! goes.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use engineio_proto::Instant;

/// Why an awaited ack will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The deadline passed (after every retry, with the client's
    /// `retries`).
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected after the event was sent (or before it
    /// could be).
    #[error("socket has been disconnected")]
    Disconnected,
}

/// Awaited acks keyed by `K`, each with the machine's data `V` and an
/// optional deadline; the deadlines in firing order.
#[derive(Debug, Clone)]
pub(crate) struct AckTable<K, V> {
    pending: BTreeMap<K, Entry<V>>,
    deadlines: BTreeSet<(Instant, K)>,
}

#[derive(Debug, Clone)]
struct Entry<V> {
    deadline: Option<Instant>,
    value: V,
}

impl<K, V> Default for AckTable<K, V> {
    fn default() -> Self {
        AckTable {
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V> AckTable<K, V> {
    /// Awaits `key` until `deadline` (forever with `None`).
    pub(crate) fn insert(&mut self, key: K, deadline: Option<Instant>, value: V) {
        if let Some(at) = deadline {
            self.deadlines.insert((at, key.clone()));
        }
        if let Some(old) = self.pending.insert(key.clone(), Entry { deadline, value }) {
            if let Some(at) = old.deadline.filter(|at| Some(*at) != deadline) {
                self.deadlines.remove(&(at, key));
            }
        }
    }

    /// Stops awaiting `key` (answered, or given up), disarming its deadline.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let entry = self.pending.remove(key)?;
        if let Some(at) = entry.deadline {
            self.deadlines.remove(&(at, key.clone()));
        }
        Some(entry.value)
    }

    /// Whether `key` is awaited.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.pending.contains_key(key)
    }

    /// The machine's data of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.pending.get(key).map(|entry| &entry.value)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The next ack whose deadline is at or before `now`, no longer
    /// awaited.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(K, V)> {
        let (at, _) = self.deadlines.first()?;
        if *at > now {
            return None;
        }
        let (_, key) = self.deadlines.pop_first()?;
        let entry = self.pending.remove(&key)?;
        Some((key, entry.value))
    }

    /// Stops awaiting every ack `pick` chooses, in key order, disarming
    /// their deadlines.
    pub(crate) fn take_where(&mut self, mut pick: impl FnMut(&K, &V) -> bool) -> Vec<(K, V)> {
        let keys: Vec<K> = self
            .pending
            .iter()
            .filter(|(key, entry)| pick(key, &entry.value))
            .map(|(key, _)| key.clone())
            .collect();
        keys.into_iter()
            .filter_map(|key| self.remove(&key).map(|value| (key, value)))
            .collect()
    }

    /// The data of every awaited ack, to change in place.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.pending
            .iter_mut()
            .map(|(key, entry)| (key, &mut entry.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn deadlines_fire_in_order_and_answered_acks_never_fire() {
        let t0 = Instant::from_millis(0);
        let mut table: AckTable<u32, &str> = AckTable::default();
        table.insert(1, Some(t0 + Duration::from_secs(2)), "late");
        table.insert(2, Some(t0 + Duration::from_secs(1)), "early");
        table.insert(3, None, "forever");
        table.insert(4, Some(t0 + Duration::from_secs(1)), "answered");
        assert_eq!(table.remove(&4), Some("answered"));
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.pop_expired(t0), None);
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(table.pop_expired(t2), Some((2, "early")));
        assert_eq!(table.pop_expired(t2), Some((1, "late")));
        assert_eq!(table.pop_expired(t2), None);
        assert_eq!(table.next_deadline(), None);
        assert!(table.contains(&3));
        assert_eq!(table.take_where(|_, _| true), [(3, "forever")]);
        assert!(!table.contains(&3));
    }

    #[test]
    fn a_key_awaited_again_keeps_only_its_new_deadline() {
        let t0 = Instant::from_millis(0);
        let mut table: AckTable<u32, ()> = AckTable::default();
        table.insert(1, Some(t0 + Duration::from_secs(1)), ());
        table.insert(1, Some(t0 + Duration::from_secs(5)), ());
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(table.take_where(|key, _| *key == 1), [(1, ())]);
        assert_eq!(table.next_deadline(), None);
    }
}
