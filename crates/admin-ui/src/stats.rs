//! `server_stats`, every two seconds as Node sends it: who this server is,
//! its sessions, its namespaces, and what its engine did since the last
//! one (`aggregatedEvents`, counts per second, which the UI's charts
//! draw). The counts come from [`EngineStats`], read once a second.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use socketio::engine::EngineStats;
use socketio::{Runtime, SocketIo};

use crate::notices::{Notice, Outbox};

/// How often Node's instrumentation sends `server_stats`.
const STATS_EVERY: Duration = Duration::from_secs(2);

/// Who this server is in the UI's list of servers.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) server_id: String,
    pub(crate) hostname: String,
    pub(crate) pid: u32,
}

/// One count of Node's `EventBuffer`: events of one type (and reason) in
/// one second.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aggregated {
    timestamp: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "subType", skip_serializing_if = "Option::is_none")]
    sub_type: Option<&'static str>,
    count: u64,
}

/// The counts of one second, from the engine's stats then and a second
/// before: Node's `rawConnection`, `rawDisconnection` (by reason),
/// `packetsIn`/`Out` and `bytesIn`/`Out`, those that are not zero.
pub(crate) fn aggregate(delta: &EngineStats, timestamp: u64, into: &mut Vec<Aggregated>) {
    let mut push = |kind, sub_type, count| {
        if count > 0 {
            into.push(Aggregated {
                timestamp,
                kind,
                sub_type,
                count,
            });
        }
    };
    push("rawConnection", None, delta.sessions_opened);
    for (reason, count) in delta.closed() {
        push("rawDisconnection", Some(reason), count);
    }
    push("packetsIn", None, delta.messages_in);
    push("bytesIn", None, delta.bytes_in);
    push("packetsOut", None, delta.messages_out);
    push("bytesOut", None, delta.bytes_out);
}

#[derive(Serialize)]
struct NamespaceStats {
    name: String,
    #[serde(rename = "socketsCount")]
    sockets_count: usize,
}

#[derive(Serialize)]
struct ServerStats<'a> {
    #[serde(rename = "serverId")]
    server_id: &'a str,
    hostname: &'a str,
    pid: u32,
    uptime: f64,
    #[serde(rename = "clientsCount")]
    clients_count: usize,
    #[serde(rename = "pollingClientsCount")]
    polling_clients_count: u64,
    #[serde(rename = "aggregatedEvents")]
    aggregated_events: &'a [Aggregated],
    namespaces: Vec<NamespaceStats>,
}

/// The milliseconds since the epoch of the second `at` is in.
fn second_of(at: SystemTime) -> u64 {
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    millis - millis % 1000
}

/// Sends `server_stats` now and every two seconds, as long as the server's
/// namespaces live (the task holds only what it needs).
pub(crate) async fn run<R: Runtime>(io: SocketIo<R>, identity: Identity, outbox: Outbox) {
    let started = Instant::now();
    let runtime = io.runtime().clone();
    let mut last = io.engine().stats();
    let mut buffer = Vec::new();
    let mut tick: u64 = 0;
    loop {
        // Once a second: what the engine did in that second.
        let now = io.engine().stats();
        aggregate(&now.since(&last), second_of(SystemTime::now()), &mut buffer);
        last = now;
        if tick.is_multiple_of(STATS_EVERY.as_secs()) {
            let stats = ServerStats {
                server_id: &identity.server_id,
                hostname: &identity.hostname,
                pid: identity.pid,
                uptime: started.elapsed().as_secs_f64(),
                clients_count: io.engine().session_count(),
                polling_clients_count: now.polling,
                aggregated_events: &buffer,
                namespaces: io
                    .namespaces()
                    .into_iter()
                    .map(|namespace| NamespaceStats {
                        name: namespace.name().to_owned(),
                        sockets_count: namespace.socket_count(),
                    })
                    .collect(),
            };
            outbox.send(Notice::new("server_stats", &(stats,)));
            buffer.clear();
        }
        if outbox.is_closed() {
            return;
        }
        tick += 1;
        runtime
            .sleep_until(started + Duration::from_secs(tick))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counts_that_are_not_zero_are_sent_in_nodes_shape() {
        let mut buffer = Vec::new();
        aggregate(&EngineStats::default(), 1000, &mut buffer);
        assert!(buffer.is_empty());
        let json = serde_json::to_value(Aggregated {
            timestamp: 1000,
            kind: "rawDisconnection",
            sub_type: Some("transport close"),
            count: 2,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"timestamp": 1000, "type": "rawDisconnection", "subType": "transport close", "count": 2})
        );
        assert_eq!(
            second_of(UNIX_EPOCH + Duration::from_millis(12_345)),
            12_000
        );
    }
}
