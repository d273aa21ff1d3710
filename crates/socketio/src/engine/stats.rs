//! What an engine's sessions did, counted as it happens: sessions opened
//! and closed (by reason), transports, upgrades, and the messages both
//! ways. These are the engine events Node's Admin UI instrumentation and
//! metrics listen to (`connection`, `upgrade`, `close`, `packet`,
//! `packetCreate`); here each session's task adds its machine's counts
//! ([`Traffic`]) once per turn of its loop, so a message costs no shared
//! write of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use engineio_proto::server::Traffic;
use engineio_proto::{CloseReason, TransportKind};

/// Node's close reasons (`CloseReason::as_node_str`), in counter order.
const CLOSE_REASONS: [&str; 5] = [
    "ping timeout",
    "transport close",
    "transport error",
    "parse error",
    "forced close",
];

fn reason_index(reason: &CloseReason) -> usize {
    let name = reason.as_node_str();
    CLOSE_REASONS
        .iter()
        .position(|known| *known == name)
        .unwrap_or(CLOSE_REASONS.len() - 1)
}

/// The live counters, shared by the engine's session tasks.
#[derive(Default)]
pub(crate) struct Counters {
    opened: AtomicU64,
    upgrades: AtomicU64,
    polling: AtomicU64,
    websocket: AtomicU64,
    closed: [AtomicU64; CLOSE_REASONS.len()],
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl Counters {
    fn gauge(&self, transport: TransportKind) -> &AtomicU64 {
        match transport {
            TransportKind::Polling => &self.polling,
            TransportKind::WebSocket => &self.websocket,
        }
    }

    pub(crate) fn opened(&self, transport: TransportKind) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.gauge(transport).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upgraded(&self) {
        self.upgrades.fetch_add(1, Ordering::Relaxed);
        self.polling.fetch_sub(1, Ordering::Relaxed);
        self.websocket.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, transport: TransportKind, reason: Option<&CloseReason>) {
        self.gauge(transport).fetch_sub(1, Ordering::Relaxed);
        let index = reason.map_or(CLOSE_REASONS.len() - 1, reason_index);
        self.closed[index].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, traffic: Traffic) {
        if traffic.messages_in != 0 {
            self.messages_in
                .fetch_add(traffic.messages_in, Ordering::Relaxed);
            self.bytes_in.fetch_add(traffic.bytes_in, Ordering::Relaxed);
        }
        if traffic.messages_out != 0 {
            self.messages_out
                .fetch_add(traffic.messages_out, Ordering::Relaxed);
            self.bytes_out
                .fetch_add(traffic.bytes_out, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> EngineStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EngineStats {
            sessions_opened: load(&self.opened),
            upgrades: load(&self.upgrades),
            polling: load(&self.polling),
            websocket: load(&self.websocket),
            closed: std::array::from_fn(|i| load(&self.closed[i])),
            messages_in: load(&self.messages_in),
            bytes_in: load(&self.bytes_in),
            messages_out: load(&self.messages_out),
            bytes_out: load(&self.bytes_out),
        }
    }
}

/// What an engine's sessions did since it started, read with
/// [`EngineServer::stats`](super::EngineServer::stats): totals that only
/// grow, and the sessions open now by transport. Take two and
/// [`EngineStats::since`] for what happened in between (an Admin UI
/// interval, a metrics scrape).
///
/// ```
/// # fn show<R: socketio::Runtime>(io: &socketio::SocketIo<R>) {
/// let stats = io.engine().stats();
/// println!(
///     "{} sessions ({} polling), {} messages in",
///     stats.polling + stats.websocket,
///     stats.polling,
///     stats.messages_in,
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Sessions opened (Node's engine `connection` events).
    pub sessions_opened: u64,
    /// Sessions that moved from long-polling to WebSocket.
    pub upgrades: u64,
    /// Sessions open now on long-polling.
    pub polling: u64,
    /// Sessions open now on WebSocket.
    pub websocket: u64,
    /// Sessions closed, by reason; see [`EngineStats::closed`].
    closed: [u64; CLOSE_REASONS.len()],
    /// Messages received (heartbeats and other control packets aside).
    pub messages_in: u64,
    /// Their data's bytes, without Engine.IO framing (as Node counts them).
    pub bytes_in: u64,
    /// Messages queued for the clients.
    pub messages_out: u64,
    /// Their data's bytes.
    pub bytes_out: u64,
}

impl EngineStats {
    /// Sessions closed, by Node's reason (`"transport close"`, `"ping
    /// timeout"`, `"transport error"`, `"parse error"`, `"forced close"`),
    /// every reason listed.
    pub fn closed(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CLOSE_REASONS
            .iter()
            .copied()
            .zip(self.closed.iter().copied())
    }

    /// Sessions closed for every reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// What happened between `earlier` and this: the totals' differences;
    /// the open sessions are this one's.
    pub fn since(&self, earlier: &EngineStats) -> EngineStats {
        let diff = |now: u64, then: u64| now.saturating_sub(then);
        EngineStats {
            sessions_opened: diff(self.sessions_opened, earlier.sessions_opened),
            upgrades: diff(self.upgrades, earlier.upgrades),
            polling: self.polling,
            websocket: self.websocket,
            closed: std::array::from_fn(|i| diff(self.closed[i], earlier.closed[i])),
            messages_in: diff(self.messages_in, earlier.messages_in),
            bytes_in: diff(self.bytes_in, earlier.bytes_in),
            messages_out: diff(self.messages_out, earlier.messages_out),
            bytes_out: diff(self.bytes_out, earlier.bytes_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_sessions_and_differences_are_totals_only() {
        let counters = Counters::default();
        counters.opened(TransportKind::Polling);
        counters.opened(TransportKind::WebSocket);
        let before = counters.snapshot();
        counters.upgraded();
        counters.add(Traffic {
            messages_in: 2,
            bytes_in: 10,
            messages_out: 1,
            bytes_out: 4,
        });
        counters.closed(TransportKind::WebSocket, Some(&CloseReason::PingTimeout));
        let after = counters.snapshot();
        assert_eq!((after.polling, after.websocket), (0, 1));
        let delta = after.since(&before);
        assert_eq!(delta.sessions_opened, 0);
        assert_eq!(delta.upgrades, 1);
        assert_eq!((delta.messages_in, delta.bytes_in), (2, 10));
        assert_eq!((delta.messages_out, delta.bytes_out), (1, 4));
        assert_eq!(delta.closed_total(), 1);
        assert_eq!(
            delta.closed().find(|(_, n)| *n == 1),
            Some(("ping timeout", 1))
        );
        // Node's reason for a peer's CLOSE is "transport close".
        counters.closed(TransportKind::WebSocket, Some(&CloseReason::PeerClose));
        assert_eq!(
            counters.snapshot().closed().nth(1),
            Some(("transport close", 1))
        );
    }
}
