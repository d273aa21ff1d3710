//! The soak: thousands of clients on one server for minutes, every message
//! checked (`scripts/soak`, `docs/reliability.md`).
//!
//! The server ([`server::app`], served by the `soak-server` binary, on
//! tokio or smol) broadcasts a numbered `tick` to everyone at a steady
//! rate and relays each client's numbered `say` to the client's room. The
//! clients ([`fleet`], our Rust client, in the `soak` binary's process)
//! use WebSocket, long-polling, and polling upgraded to WebSocket in equal
//! parts, with connection state recovery on. Each client checks that ticks
//! and each room member's says arrive once, in order, with no gap; at the
//! end each has exactly what was sent. The `soak` binary samples the
//! server's memory and reports latency percentiles per window
//! ([`report`]).

pub mod broker;
pub mod fleet;
pub mod kill;
pub mod network;
pub mod process;
pub mod relay;
pub mod report;
pub mod server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one soak run does. [`Plan::full`] is the one `docs/reliability.md`
/// reports; [`Plan::smoke`] runs within the test command.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Clients, connected before the load starts.
    pub connections: usize,
    /// How long the load runs once everyone is connected.
    pub load: Duration,
    /// Latency and memory are reported per window of this length.
    pub window: Duration,
    /// Clients per room (the last room may be smaller).
    pub room_size: usize,
    /// Each client emits a `say` (with an ack) this often.
    pub say_every: Duration,
    /// The server broadcasts a `tick` to everyone this often.
    pub tick_every: Duration,
    /// The server's heartbeat.
    pub ping_interval: Duration,
    /// See [`Plan::ping_interval`].
    pub ping_timeout: Duration,
    /// Connection attempts in flight at once while connecting.
    pub connecting_at_once: usize,
    /// How much the server's memory may grow from the first window to
    /// the last, as a fraction of the first.
    pub rss_growth_limit: f64,
}

impl Plan {
    /// Ten thousand clients for ten minutes: rooms of 20, a `say` from
    /// each client every 20 s (500 a second, each relayed to 19 others)
    /// and a tick to all every second (10,000 deliveries a second), a
    /// 5 s heartbeat.
    pub fn full() -> Plan {
        Plan {
            connections: 10_000,
            load: Duration::from_secs(600),
            window: Duration::from_secs(60),
            room_size: 20,
            say_every: Duration::from_secs(20),
            tick_every: Duration::from_secs(1),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            connecting_at_once: 100,
            rss_growth_limit: 0.10,
        }
    }

    /// The same shape, small and short enough for the test command (and a
    /// debug build on a busy machine): 150 clients, 12 s of load.
    pub fn smoke() -> Plan {
        Plan {
            connections: 150,
            load: Duration::from_secs(12),
            window: Duration::from_secs(4),
            room_size: 10,
            say_every: Duration::from_secs(1),
            tick_every: Duration::from_millis(100),
            ping_interval: Duration::from_millis(2_500),
            ping_timeout: Duration::from_secs(5),
            connecting_at_once: 50,
            // A debug build's allocator is still settling after 12 s; the
            // smoke checks delivery, the full run checks memory.
            rss_growth_limit: 1.0,
        }
    }

    /// The room of client `index`.
    pub fn room_of(&self, index: usize) -> usize {
        index / self.room_size
    }

    /// The clients of room `room`, as a range of indices.
    pub fn members(&self, room: usize) -> std::ops::Range<usize> {
        let start = room * self.room_size;
        start..(start + self.room_size).min(self.connections)
    }
}

/// The server's settings, passed to `soak-server` on its command line.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// See [`Plan::ping_interval`].
    pub ping_interval: Duration,
    /// See [`Plan::ping_timeout`].
    pub ping_timeout: Duration,
    /// See [`Plan::tick_every`].
    pub tick_every: Duration,
}

impl ServerSettings {
    /// The settings of `plan`.
    pub fn of(plan: &Plan) -> ServerSettings {
        ServerSettings {
            ping_interval: plan.ping_interval,
            ping_timeout: plan.ping_timeout,
            tick_every: plan.tick_every,
        }
    }

    /// As `soak-server` arguments (milliseconds).
    pub fn to_args(self) -> [String; 3] {
        [self.ping_interval, self.ping_timeout, self.tick_every].map(|d| d.as_millis().to_string())
    }

    /// Parses [`ServerSettings::to_args`].
    pub fn from_args(args: &[String]) -> Option<ServerSettings> {
        let [interval, timeout, tick] = args else {
            return None;
        };
        let ms = |text: &String| text.parse().ok().map(Duration::from_millis);
        Some(ServerSettings {
            ping_interval: ms(interval)?,
            ping_timeout: ms(timeout)?,
            tick_every: ms(tick)?,
        })
    }
}

/// How the servers of a soak's cluster share their traffic through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// The classic pub/sub adapter (recovery on, for each server alone).
    Classic,
    /// The Streams adapter, connection state recovery on or off.
    Streams {
        /// Recovery on.
        recovery: bool,
    },
}

impl Cluster {
    /// As a `soak-server` argument.
    pub fn as_arg(self) -> &'static str {
        match self {
            Cluster::Classic => "classic",
            Cluster::Streams { recovery: true } => "streams",
            Cluster::Streams { recovery: false } => "streams-no-recovery",
        }
    }

    /// Parses [`Cluster::as_arg`].
    pub fn from_arg(arg: &str) -> Option<Cluster> {
        match arg {
            "classic" => Some(Cluster::Classic),
            "streams" => Some(Cluster::Streams { recovery: true }),
            "streams-no-recovery" => Some(Cluster::Streams { recovery: false }),
            _ => None,
        }
    }

    /// A server's configuration in this cluster on the Redis at `url`.
    pub fn config(self, url: &str) -> Result<socketio::SocketIoConfig, String> {
        use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory, StreamsConfig};
        let factory = match self {
            Cluster::Classic => RedisAdapterFactory::new(url, RedisAdapterConfig::default()),
            Cluster::Streams { .. } => RedisAdapterFactory::new_streams(
                url,
                RedisAdapterConfig::default(),
                StreamsConfig::default(),
            ),
        }
        .map_err(|error| format!("{url}: {error}"))?;
        let mut config = socketio::SocketIoConfig::default();
        config.adapter = std::sync::Arc::new(factory);
        if self != (Cluster::Streams { recovery: false }) {
            config.recovery = Some(socketio::RecoveryConfig::default());
        }
        Ok(config)
    }
}

/// Microseconds since the Unix epoch: ticks carry the server's, and a
/// client on the same machine subtracts them from its own.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// Ends a report: passed, or failed with why and the lines that explain it.
pub fn verdict<'a>(
    out: &mut String,
    failures: &[String],
    details: impl IntoIterator<Item = &'a String>,
) {
    use std::fmt::Write;
    if failures.is_empty() {
        let _ = writeln!(out, "**Passed.**");
        return;
    }
    let _ = writeln!(out, "**Failed:** {}.", failures.join("; "));
    for line in details {
        let _ = writeln!(out, "- {line}");
    }
}
