//! The kill soak: two servers of ours (processes, [`super::process`]) on
//! Redis Streams behind a balancer ([`Relay`]), every client on one of them, and a
//! third server of the cluster (in this process, no clients) broadcasting a
//! numbered tick to everyone. Each round kills (`SIGKILL`) the server the
//! clients are on in the middle of the ticks, sends new connections to
//! the other, waits until every client is back, and starts a replacement.
//!
//! With connection state recovery, every client must get every tick once
//! and in order: the survivor restores each session from Redis. Without
//! it, a client may miss exactly the ticks broadcast while it had no
//! server (from at most [`LOSS_BEFORE_KILL`] before the kill until its new
//! connection): never one outside that window, never one twice, never out
//! of order.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::fleet::{Fleet, Gap};
use super::process::ServerProcess;
use super::relay::Relay;
use super::server::{self, Ticker};
use super::{unix_micros, Cluster, Plan, ServerSettings};
use crate::redis::RedisServer;

/// How long before the kill a lost tick may have been broadcast: ticks the
/// killed server had read from Redis but not yet written to its clients.
pub const LOSS_BEFORE_KILL: Duration = Duration::from_secs(1);

/// How long every client may take to be connected again after a kill.
pub const BACK_WITHIN: Duration = Duration::from_secs(60);

/// What one kill soak does.
#[derive(Debug, Clone)]
pub struct KillPlan {
    /// Clients (a third each WebSocket, long-polling, upgraded polling).
    pub connections: usize,
    /// Kills.
    pub rounds: usize,
    /// Ticks flow this long before the first kill, between a replacement
    /// and the next kill, and after the last.
    pub between: Duration,
    /// The publisher broadcasts a tick this often.
    pub tick_every: Duration,
    /// The servers' heartbeat.
    pub ping_interval: Duration,
    /// See [`KillPlan::ping_interval`].
    pub ping_timeout: Duration,
    /// Connection state recovery on every server.
    pub recovery: bool,
}

impl KillPlan {
    /// 2,000 clients, three kills 20 s apart, 20 ticks a second.
    pub fn full(recovery: bool) -> KillPlan {
        KillPlan {
            connections: 2_000,
            rounds: 3,
            between: Duration::from_secs(20),
            tick_every: Duration::from_millis(50),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            recovery,
        }
    }

    /// 60 clients, two kills 3 s apart: for the test command.
    pub fn smoke(recovery: bool) -> KillPlan {
        KillPlan {
            connections: 60,
            rounds: 2,
            between: Duration::from_secs(3),
            ..KillPlan::full(recovery)
        }
    }

    fn settings(&self) -> ServerSettings {
        ServerSettings {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            tick_every: self.tick_every,
        }
    }

    /// The fleet's plan: rooms of 20, no says.
    fn fleet(&self) -> Plan {
        Plan {
            connections: self.connections,
            load: self.between * (self.rounds as u32 + 1),
            window: self.between,
            room_size: 20,
            say_every: Duration::MAX,
            tick_every: self.tick_every,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            connecting_at_once: 100,
            rss_growth_limit: 1.0,
        }
    }
}

/// One kill: when, and how long until every client was connected again.
struct Round {
    killed_at: u64,
    back_in: Option<Duration>,
    recovered: u64,
}

/// Runs `plan` with servers on `runtime`: the report section and whether
/// it passed.
pub async fn run(runtime: &str, plan: &KillPlan) -> Result<(String, bool), String> {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let settings = plan.settings();
    let cluster = Cluster::Streams {
        recovery: plan.recovery,
    };
    // The publisher: a server of the cluster that no client talks to.
    let (publisher, ticker) =
        server::app(runtime_tokio::TokioRuntime, settings, cluster.config(&url)?);
    let start = || ServerProcess::start(runtime, settings, Some((&url, cluster)));
    let mut servers = [Some(start()?), Some(start()?)];
    let balancer = Relay::start(servers[0].as_ref().expect("started").addr(), 0)
        .await
        .map_err(|e| e.to_string())?;

    let fleet = Fleet::connect(&balancer.url(), &plan.fleet()).await?;
    let clients = plan.connections as u64;
    fleet.recorder.start();
    ticker.start();
    tokio::time::sleep(plan.between).await;

    let mut rounds = Vec::new();
    for round in 0..plan.rounds {
        let victim = round % 2;
        let survivor = servers[1 - victim].as_ref().expect("running").addr();
        balancer.retarget(survivor);
        let killed_at = unix_micros();
        let killed = Instant::now();
        servers[victim].take().expect("running").kill();
        let expected = clients * (round as u64 + 2);
        let mut back_in = None;
        while killed.elapsed() < BACK_WITHIN {
            if fleet.counters.connects.load(Relaxed) >= expected {
                back_in = Some(killed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("soak kill: round {round}: back in {back_in:?}");
        rounds.push(Round {
            killed_at,
            back_in,
            recovered: fleet.counters.recovered.load(Relaxed),
        });
        servers[victim] = Some(start()?);
        tokio::time::sleep(plan.between).await;
    }

    let last_tick = ticker.stop().await;
    let settle = Instant::now() + Duration::from_secs(30);
    let mut missing = fleet.missing(last_tick);
    while missing.0 != 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
        missing = fleet.missing(last_tick);
    }
    let mut crashed = Vec::new();
    for server in servers.iter_mut().flatten() {
        if !server.running() {
            crashed.push(format!("server on port {} exited", server.port));
        }
        crashed.extend(server.panicked());
    }
    fleet.close();
    drop(balancer);
    drop(servers);
    publisher.close().await;
    redis.stop();

    let report = KillReport {
        runtime,
        plan,
        fleet: &fleet,
        ticker: &ticker,
        rounds: &rounds,
        last_tick,
        missing: missing.0,
        crashed,
    };
    let failures = report.failures();
    Ok((report.markdown(&failures), failures.is_empty()))
}

struct KillReport<'a> {
    runtime: &'a str,
    plan: &'a KillPlan,
    fleet: &'a Fleet,
    ticker: &'a Ticker,
    rounds: &'a [Round],
    last_tick: u64,
    missing: u64,
    /// Surviving servers that exited, and panics they reported.
    crashed: Vec<String>,
}

impl KillReport<'_> {
    /// The gap's ticks were all broadcast while its client had no server:
    /// after the kill before it (less [`LOSS_BEFORE_KILL`]) and before the
    /// client got its next tick.
    fn gap_explained(&self, gap: &Gap) -> bool {
        let Some(round) = self.rounds.iter().rev().find(|r| r.killed_at <= gap.at) else {
            return false;
        };
        let window_start = round
            .killed_at
            .saturating_sub(LOSS_BEFORE_KILL.as_micros() as u64);
        let first = self.ticker.sent_at(gap.after + 1);
        let last = self.ticker.sent_at(gap.got - 1);
        matches!((first, last), (Some(first), Some(last)) if first >= window_start && last <= gap.at)
    }

    fn failures(&self) -> Vec<String> {
        let c = &self.fleet.counters;
        let clients = self.plan.connections as u64;
        let rounds = self.rounds.len() as u64;
        let mut failures = Vec::new();
        let gaps = c.gaps.lock().unwrap().clone();
        let repeats = c.tick_faults.load(Relaxed) - gaps.len() as u64;
        if repeats != 0 {
            failures.push(format!("{repeats} ticks received twice or out of order"));
        }
        if self.plan.recovery {
            if !gaps.is_empty() {
                failures.push(format!("{} gaps in the ticks with recovery on", gaps.len()));
            }
            let recovered = c.recovered.load(Relaxed);
            if recovered != clients * rounds {
                failures.push(format!(
                    "{recovered} sessions recovered, expected {}",
                    clients * rounds
                ));
            }
        } else {
            let unexplained = gaps.iter().filter(|gap| !self.gap_explained(gap)).count();
            if unexplained != 0 {
                failures.push(format!(
                    "{unexplained} gaps in the ticks outside the time their client had no server"
                ));
            }
        }
        if self.missing != 0 {
            failures.push(format!("{} ticks never received at the end", self.missing));
        }
        if self.rounds.iter().any(|round| round.back_in.is_none()) {
            failures.push(format!("clients not back within {BACK_WITHIN:?} of a kill"));
        }
        failures.extend(self.crashed.iter().cloned());
        let failed_acks = c.ack_failures.load(Relaxed);
        if failed_acks != 0 {
            failures.push(format!("{failed_acks} failed acks"));
        }
        if self.last_tick == 0 {
            failures.push("no tick was sent".to_owned());
        }
        failures
    }

    fn markdown(&self, failures: &[String]) -> String {
        let p = self.plan;
        let c = &self.fleet.counters;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Kills, servers on {}, recovery {}\n",
            self.runtime,
            if p.recovery { "on" } else { "off" }
        );
        let _ = writeln!(
            out,
            "{} clients (a third each WebSocket, long-polling, polling upgraded) behind a \
             balancer, two servers on Redis Streams and a publisher broadcasting a tick every \
             {:?}; {} kills (`SIGKILL`) of the clients' server, {:?} apart; heartbeat {:?} / \
             {:?}.\n",
            p.connections, p.tick_every, p.rounds, p.between, p.ping_interval, p.ping_timeout
        );
        let _ = writeln!(
            out,
            "| kill | every client connected again after | sessions recovered so far |"
        );
        let _ = writeln!(out, "| --- | --- | ---: |");
        for (i, round) in self.rounds.iter().enumerate() {
            let back = round
                .back_in
                .map_or("not within the limit".to_owned(), |d| {
                    format!("{:.2} s", d.as_secs_f64())
                });
            let _ = writeln!(out, "| {} | {back} | {} |", i + 1, round.recovered);
        }
        let gaps = c.gaps.lock().unwrap();
        let lost: u64 = gaps.iter().map(|gap| gap.got - gap.after - 1).sum();
        let _ = writeln!(
            out,
            "\nTicks: {} sent, {} received; {} gaps ({} ticks lost in all, {:.1} per gap); \
             disconnects {}, reconnection attempts {}, connect errors {}.\n",
            self.last_tick,
            c.ticks.load(Relaxed),
            gaps.len(),
            lost,
            lost as f64 / (gaps.len() as f64).max(1.0),
            c.disconnects.load(Relaxed),
            c.reconnect_attempts.load(Relaxed),
            c.connect_errors.load(Relaxed),
        );
        // Without recovery every client's gap is a reason; they are
        // expected, and checked against the kill windows instead.
        let reasons = c.reasons.lock().unwrap();
        super::verdict(&mut out, failures, reasons.iter().filter(|_| p.recovery));
        out
    }
}
