//! What each namespace's sockets did, counted as it happens (relaxed
//! atomics; a broadcast adds its deliveries once), and read with
//! [`crate::SocketIo::stats`] by whoever reports it: the Admin UI, a
//! metrics exporter, a health endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::engine::EngineStats;
use crate::locks::lock;

/// The live counters of one namespace.
#[derive(Default)]
pub(crate) struct NamespaceCounters {
    connects: AtomicU64,
    disconnects: Mutex<BTreeMap<&'static str, u64>>,
    events_received: AtomicU64,
    events_sent: AtomicU64,
    broadcasts: AtomicU64,
    dropped_volatile: AtomicU64,
    dropped_lagging: AtomicU64,
    ack_timeouts: AtomicU64,
}

/// What became of an event queued for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Queued,
    /// A volatile event the transport could not take at once.
    SkippedVolatile,
    /// The socket's buffer is full (a client that does not read).
    Lagging,
    /// The socket is gone.
    Gone,
}

/// Deliveries of one emit or broadcast, added to the counters at once.
#[derive(Default)]
pub(crate) struct Tally {
    queued: u64,
    volatile: u64,
    lagging: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Queued => self.queued += 1,
            Delivery::SkippedVolatile => self.volatile += 1,
            Delivery::Lagging => self.lagging += 1,
            Delivery::Gone => {}
        }
    }
}

impl NamespaceCounters {
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn disconnected(&self, reason: &'static str) {
        *lock(&self.disconnects).entry(reason).or_default() += 1;
    }

    pub(crate) fn event_received(&self) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ack_timed_out(&self) {
        self.ack_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A broadcast's (or one emit's) deliveries.
    pub(crate) fn delivered(&self, tally: &Tally, broadcast: bool) {
        if broadcast {
            self.broadcasts.fetch_add(1, Ordering::Relaxed);
        }
        for (counter, n) in [
            (&self.events_sent, tally.queued),
            (&self.dropped_volatile, tally.volatile),
            (&self.dropped_lagging, tally.lagging),
        ] {
            if n != 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn snapshot(&self, name: &str, sockets: usize) -> NamespaceStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NamespaceStats {
            name: name.to_owned(),
            sockets,
            connects: load(&self.connects),
            disconnects: lock(&self.disconnects)
                .iter()
                .map(|(reason, n)| (*reason, *n))
                .collect(),
            events_received: load(&self.events_received),
            events_sent: load(&self.events_sent),
            broadcasts: load(&self.broadcasts),
            dropped_volatile: load(&self.dropped_volatile),
            dropped_lagging: load(&self.dropped_lagging),
            ack_timeouts: load(&self.ack_timeouts),
        }
    }
}

/// What one namespace's sockets on this server did since it was created
/// (a dynamic namespace starts again from zero when it is created again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceStats {
    /// The namespace.
    pub name: String,
    /// Its sockets connected now.
    pub sockets: usize,
    /// Sockets that connected.
    pub connects: u64,
    /// Sockets that disconnected, by Node's reason (`"transport close"`,
    /// `"client namespace disconnect"`, `"ping timeout"`, …), the reasons
    /// seen so far.
    pub disconnects: Vec<(&'static str, u64)>,
    /// Events received from clients (acks aside).
    pub events_received: u64,
    /// Events queued for clients, one per recipient (acks aside).
    pub events_sent: u64,
    /// Broadcasts delivered to this server's sockets (one per broadcast,
    /// whatever the number of recipients).
    pub broadcasts: u64,
    /// Volatile events not sent: the socket's transport could not take
    /// them at once.
    pub dropped_volatile: u64,
    /// Events not sent to a socket whose buffer was full (a client that
    /// does not read; the emit or broadcast reported it).
    pub dropped_lagging: u64,
    /// Acks the server awaited that did not come in time.
    pub ack_timeouts: u64,
}

/// What a server did since it started: its engine's sessions and traffic,
/// and each namespace's sockets and events. Read it with
/// [`SocketIo::stats`](crate::SocketIo::stats).
///
/// ```
/// # fn show<R: socketio::Runtime>(io: &socketio::SocketIo<R>) {
/// let stats = io.stats();
/// for namespace in &stats.namespaces {
///     println!("{}: {} sockets, {} events in", namespace.name, namespace.sockets, namespace.events_received);
/// }
/// println!("{} bytes out", stats.engine.bytes_out);
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// The Engine.IO sessions: opened, closed by reason, by transport, and
    /// their messages and bytes.
    pub engine: EngineStats,
    /// Every namespace sockets can join, by name.
    pub namespaces: Vec<NamespaceStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_counts_its_deliveries_at_once() {
        let counters = NamespaceCounters::default();
        let mut tally = Tally::default();
        for delivery in [
            Delivery::Queued,
            Delivery::Queued,
            Delivery::SkippedVolatile,
            Delivery::Lagging,
            Delivery::Gone,
        ] {
            tally.add(delivery);
        }
        counters.delivered(&tally, true);
        counters.connected();
        counters.disconnected("transport close");
        counters.disconnected("transport close");
        counters.event_received();
        let stats = counters.snapshot("/", 3);
        assert_eq!(
            (
                stats.events_sent,
                stats.dropped_volatile,
                stats.dropped_lagging,
                stats.broadcasts
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(stats.disconnects, [("transport close", 2)]);
        assert_eq!(
            (stats.connects, stats.events_received, stats.sockets),
            (1, 1, 3)
        );
    }
}
