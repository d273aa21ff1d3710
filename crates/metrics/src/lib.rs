//! A Socket.IO server's counters ([`socketio::SocketIo::stats`]) as
//! metrics of the [`metrics`] facade, for whichever recorder the
//! application installs: Prometheus (`metrics-exporter-prometheus`),
//! StatsD, OpenTelemetry, …
//!
//! The server counts what happens with relaxed atomics and nothing else
//! (a broadcast adds its deliveries once); [`Metrics::install`] starts a
//! task that publishes the counts every second (or [`Metrics::every`]).
//! So the hot path costs the same with metrics on or off, and metrics lag
//! at most one period behind, well within any scrape interval.
//!
//! What is published (counters end in `_total`):
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `socketio_engine_sessions` (gauge) | `transport` | Engine.IO sessions open now, by transport |
//! | `socketio_engine_sessions_opened_total` | | handshakes that opened a session |
//! | `socketio_engine_upgrades_total` | | sessions upgraded to WebSocket |
//! | `socketio_engine_sessions_closed_total` | `reason` | closed sessions, by Node's reason |
//! | `socketio_engine_messages_received_total`, `_sent_total` | | Engine.IO messages (heartbeats aside) |
//! | `socketio_engine_bytes_received_total`, `_sent_total` | | their data's bytes |
//! | `socketio_sockets` (gauge) | `namespace` | sockets connected now |
//! | `socketio_connects_total` | `namespace` | sockets that connected |
//! | `socketio_disconnects_total` | `namespace`, `reason` | sockets that left, by Node's reason |
//! | `socketio_events_received_total`, `_sent_total` | `namespace` | events (sent: one per recipient) |
//! | `socketio_broadcasts_total` | `namespace` | broadcasts delivered here |
//! | `socketio_dropped_total` | `namespace`, `cause` | events not sent: `volatile` (transport busy), `lagging` (buffer full) |
//! | `socketio_ack_timeouts_total` | `namespace` | acks the server waited for in vain |
//!
//! `adapter-redis` adds its own, through the same facade:
//! `socketio_adapter_requests_total{kind, outcome}`,
//! `socketio_adapter_request_seconds{kind}` (a histogram) and
//! `socketio_redis_connected` (a gauge).
//!
//! ```no_run
//! use runtime_tokio::TokioRuntime;
//! use socketio::{SocketIo, SocketIoConfig};
//! use socketio_metrics::Metrics;
//!
//! # fn setup() {
//! // Install a recorder first (metrics-exporter-prometheus, say), then:
//! let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
//! Metrics::new().install(&io);
//! # }
//! ```
//!
//! `examples/observability` serves them to Prometheus beside the server.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use socketio::{Runtime, ServerStats, SocketIo};

/// Publishes a server's stats through the [`metrics`] facade.
#[derive(Debug, Clone)]
pub struct Metrics {
    every: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Publishing once a second.
    pub fn new() -> Metrics {
        Metrics {
            every: Duration::from_secs(1),
        }
    }

    /// Publishes every `period` instead (at least 10 ms).
    pub fn every(mut self, period: Duration) -> Metrics {
        self.every = period.max(Duration::from_millis(10));
        self
    }

    /// Describes the metrics to the installed recorder, then publishes
    /// `io`'s stats now and every period, for as long as the process runs.
    /// Install the recorder before.
    pub fn install<R: Runtime>(self, io: &SocketIo<R>) {
        describe();
        let runtime = io.runtime().clone();
        let io = io.clone();
        let started = Instant::now();
        runtime.clone().spawn(Box::pin(async move {
            let mut tick: u32 = 0;
            loop {
                publish(&io.stats());
                tick = tick.saturating_add(1);
                runtime.sleep_until(started + self.every * tick).await;
            }
        }));
    }
}

fn describe() {
    describe_gauge!(
        "socketio_engine_sessions",
        "Engine.IO sessions open now, by transport"
    );
    describe_counter!(
        "socketio_engine_sessions_opened_total",
        "Engine.IO handshakes that opened a session"
    );
    describe_counter!(
        "socketio_engine_upgrades_total",
        "Engine.IO sessions upgraded from long-polling to WebSocket"
    );
    describe_counter!(
        "socketio_engine_sessions_closed_total",
        "Engine.IO sessions closed, by reason"
    );
    describe_counter!(
        "socketio_engine_messages_received_total",
        "Engine.IO messages received (heartbeats aside)"
    );
    describe_counter!(
        "socketio_engine_messages_sent_total",
        "Engine.IO messages queued for clients (heartbeats aside)"
    );
    describe_counter!(
        "socketio_engine_bytes_received_total",
        Unit::Bytes,
        "Data bytes of the messages received"
    );
    describe_counter!(
        "socketio_engine_bytes_sent_total",
        Unit::Bytes,
        "Data bytes of the messages sent"
    );
    describe_gauge!("socketio_sockets", "Sockets connected now, by namespace");
    describe_counter!("socketio_connects_total", "Sockets that connected");
    describe_counter!(
        "socketio_disconnects_total",
        "Sockets that disconnected, by reason"
    );
    describe_counter!(
        "socketio_events_received_total",
        "Events received from clients"
    );
    describe_counter!(
        "socketio_events_sent_total",
        "Events queued for clients, one per recipient"
    );
    describe_counter!(
        "socketio_broadcasts_total",
        "Broadcasts delivered to this server's sockets"
    );
    describe_counter!(
        "socketio_dropped_total",
        "Events not sent: volatile (transport busy) or lagging (buffer full)"
    );
    describe_counter!(
        "socketio_ack_timeouts_total",
        "Acks the server awaited that did not come in time"
    );
}

/// Publishes one reading of the stats (what [`Metrics::install`]'s task
/// does each period).
pub fn publish(stats: &ServerStats) {
    let engine = &stats.engine;
    gauge!("socketio_engine_sessions", "transport" => "polling").set(engine.polling as f64);
    gauge!("socketio_engine_sessions", "transport" => "websocket").set(engine.websocket as f64);
    counter!("socketio_engine_sessions_opened_total").absolute(engine.sessions_opened);
    counter!("socketio_engine_upgrades_total").absolute(engine.upgrades);
    for (reason, count) in engine.closed() {
        counter!("socketio_engine_sessions_closed_total", "reason" => reason).absolute(count);
    }
    counter!("socketio_engine_messages_received_total").absolute(engine.messages_in);
    counter!("socketio_engine_messages_sent_total").absolute(engine.messages_out);
    counter!("socketio_engine_bytes_received_total").absolute(engine.bytes_in);
    counter!("socketio_engine_bytes_sent_total").absolute(engine.bytes_out);
    for namespace in &stats.namespaces {
        let nsp = namespace.name.clone();
        gauge!("socketio_sockets", "namespace" => nsp.clone()).set(namespace.sockets as f64);
        counter!("socketio_connects_total", "namespace" => nsp.clone())
            .absolute(namespace.connects);
        for (reason, count) in &namespace.disconnects {
            counter!("socketio_disconnects_total", "namespace" => nsp.clone(), "reason" => *reason)
                .absolute(*count);
        }
        counter!("socketio_events_received_total", "namespace" => nsp.clone())
            .absolute(namespace.events_received);
        counter!("socketio_events_sent_total", "namespace" => nsp.clone())
            .absolute(namespace.events_sent);
        counter!("socketio_broadcasts_total", "namespace" => nsp.clone())
            .absolute(namespace.broadcasts);
        counter!("socketio_dropped_total", "namespace" => nsp.clone(), "cause" => "volatile")
            .absolute(namespace.dropped_volatile);
        counter!("socketio_dropped_total", "namespace" => nsp.clone(), "cause" => "lagging")
            .absolute(namespace.dropped_lagging);
        counter!("socketio_ack_timeouts_total", "namespace" => nsp)
            .absolute(namespace.ack_timeouts);
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use runtime_tokio::TokioRuntime;
    use socketio::SocketIoConfig;

    use super::*;

    #[tokio::test]
    async fn every_namespace_and_engine_count_is_published() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
        let _ = io.of("/chat");
        metrics::with_local_recorder(&recorder, || {
            describe();
            publish(&io.stats());
        });
        let published: Vec<(String, Vec<String>, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        let find = |name: &str, labels: &[&str]| {
            published
                .iter()
                .find(|(n, l, _)| {
                    n == name && l.iter().map(String::as_str).eq(labels.iter().copied())
                })
                .map(|(_, _, value)| value)
        };
        assert!(matches!(
            find("socketio_connects_total", &["namespace=/chat"]),
            Some(DebugValue::Counter(0))
        ));
        assert!(find("socketio_sockets", &["namespace=/chat"]).is_some());
        assert!(find(
            "socketio_dropped_total",
            &["namespace=/chat", "cause=lagging"]
        )
        .is_some());
        assert!(find(
            "socketio_engine_sessions_closed_total",
            &["reason=ping timeout"]
        )
        .is_some());
        assert!(find("socketio_engine_sessions", &["transport=websocket"]).is_some());
    }
}
