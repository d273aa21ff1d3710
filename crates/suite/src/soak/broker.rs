//! The broker soak: two servers of ours (processes) in a cluster on one
//! Redis, reached through a [`Relay`] that can slow it down. Each room's
//! clients are on one server, so their says are local traffic; a third
//! server of the cluster (in this process, no clients) broadcasts a
//! numbered tick to everyone, which reaches both servers only through
//! Redis: cross-server traffic.
//!
//! The phases: normal; Redis stopped (killed) for a while; Redis back;
//! Redis slow (the relay delays and throttles it); normal again. Local
//! traffic must go on in every second of it, relayed says none lost; the
//! ticks must resume once Redis is back (ticks broadcast while it was away
//! may be lost: a broadcast made while Redis is away reaches its own
//! server's clients only), none lost while it is only slow (with the
//! Streams adapter some may be: a server whose reader falls more than the
//! stream's `max_len` entries behind finds them trimmed, in Node too); the
//! servers must not exit or panic, and their memory must stay bounded.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fleet::{Fleet, Gap, Window};
use super::process::{rss, ServerProcess};
use super::relay::{Faults, Relay};
use super::server::{self, Ticker};
use super::{unix_micros, Cluster, Plan, ServerSettings};
use crate::redis::RedisServer;

/// How long after Redis is back the ticks may still be missing: the
/// adapters reconnect with backoff and subscribe again.
pub const RESUME_WITHIN: Duration = Duration::from_secs(10);

/// How much a server's memory may grow over the first phase's peak, in
/// KiB: what the outage and the slow broker may add.
pub const MEMORY_ALLOWANCE: u64 = 64 * 1024;

/// What one broker soak does.
#[derive(Debug, Clone)]
pub struct BrokerPlan {
    /// Clients, half on each server.
    pub connections: usize,
    /// How long each phase lasts.
    pub phase: Duration,
    /// How long Redis is stopped.
    pub outage: Duration,
    /// What the relay does to Redis's traffic in the slow phase.
    pub slow: Faults,
    /// Each client says something this often.
    pub say_every: Duration,
    /// The publisher ticks this often.
    pub tick_every: Duration,
    /// The adapter.
    pub cluster: Cluster,
}

impl BrokerPlan {
    /// 2,000 clients in rooms of 10, a say each per second, ten ticks a
    /// second, phases of 10 s; the slow Redis answers 200 ms late (plus up
    /// to 100 ms) at 32 KiB/s per connection.
    pub fn full(cluster: Cluster) -> BrokerPlan {
        BrokerPlan {
            connections: 2_000,
            phase: Duration::from_secs(10),
            outage: Duration::from_secs(10),
            slow: Faults {
                latency: Duration::from_millis(200),
                jitter: Duration::from_millis(100),
                bandwidth: Some(32 * 1024),
                ..Faults::default()
            },
            say_every: Duration::from_secs(1),
            tick_every: Duration::from_millis(100),
            cluster,
        }
    }

    /// 60 clients, phases of 3 s: for the test command.
    pub fn smoke(cluster: Cluster) -> BrokerPlan {
        BrokerPlan {
            connections: 60,
            phase: Duration::from_secs(3),
            outage: Duration::from_secs(3),
            ..BrokerPlan::full(cluster)
        }
    }

    fn settings(&self) -> ServerSettings {
        ServerSettings {
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            tick_every: self.tick_every,
        }
    }

    /// The fleet's plan: rooms of 10, windows of a second.
    fn fleet(&self) -> Plan {
        Plan {
            connections: self.connections,
            load: self.phase * 4 + self.outage,
            window: Duration::from_secs(1),
            room_size: 10,
            say_every: self.say_every,
            tick_every: self.tick_every,
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            connecting_at_once: 100,
            rss_growth_limit: 1.0,
        }
    }
}

/// A server's memory, sampled every 200 ms: (seconds since the load
/// started, KiB).
type Samples = Vec<(f64, u64)>;

/// One phase as it happened: its name and its seconds since the load
/// started.
struct Phase {
    name: &'static str,
    from: Duration,
    to: Duration,
}

/// Runs `plan` with servers on `runtime`: the report section and whether
/// it passed.
pub async fn run(runtime: &str, plan: &BrokerPlan) -> Result<(String, bool), String> {
    let mut redis = RedisServer::start().await;
    let relay = Relay::start(([127, 0, 0, 1], redis.port).into(), 1)
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("redis://{}", relay.addr());
    let settings = plan.settings();
    let (publisher, ticker) = server::app(
        runtime_tokio::TokioRuntime,
        settings,
        plan.cluster.config(&url)?,
    );
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(ServerProcess::start(
            runtime,
            settings,
            Some((&url, plan.cluster)),
        )?);
    }
    let urls: Vec<String> = servers.iter().map(ServerProcess::url).collect();
    let pids: Vec<u32> = servers.iter().map(ServerProcess::pid).collect();
    let mut fleet = Fleet::connect_spread(&urls, &plan.fleet()).await?;

    let memory: Arc<Mutex<Vec<Samples>>> = Arc::new(Mutex::new(vec![Vec::new(); 2]));
    let started = Instant::now();
    let sampling = tokio::spawn({
        let memory = memory.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let at = started.elapsed().as_secs_f64();
                let mut memory = memory.lock().unwrap();
                for (server, pid) in pids.iter().enumerate() {
                    if let Some(kib) = rss(*pid) {
                        memory[server].push((at, kib));
                    }
                }
            }
        }
    });
    fleet.start_talking();
    ticker.start();

    let mut phases = Vec::new();
    let mut phase = |name: &'static str, from: Duration| {
        phases.push(Phase {
            name,
            from,
            to: started.elapsed(),
        });
    };
    tokio::time::sleep(plan.phase).await;
    phase("normal", Duration::ZERO);

    let stopped_at = unix_micros();
    let outage_started = started.elapsed();
    redis.stop();
    tokio::time::sleep(plan.outage).await;
    phase("Redis stopped", outage_started);

    let back = started.elapsed();
    redis.restart().await;
    let restarted_at = unix_micros();
    tokio::time::sleep(plan.phase).await;
    phase("Redis back", back);

    let slow = started.elapsed();
    let slow_from = unix_micros();
    relay.set_faults(plan.slow);
    tokio::time::sleep(plan.phase).await;
    relay.set_faults(Faults::default());
    let slow_to = unix_micros();
    phase("Redis slow", slow);

    let again = started.elapsed();
    tokio::time::sleep(plan.phase).await;
    phase("normal again", again);

    sampling.abort();
    fleet.stop_talking().await;
    let last_tick = ticker.stop().await;
    let settle = Instant::now() + Duration::from_secs(30);
    let mut missing = fleet.missing(last_tick);
    while missing != (0, 0) && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
        missing = fleet.missing(last_tick);
    }
    let mut crashed = Vec::new();
    for server in &mut servers {
        if !server.running() {
            crashed.push(format!("server on port {} exited", server.port));
        }
        crashed.extend(server.panicked());
    }
    fleet.close();
    drop(servers);
    publisher.close().await;
    drop(relay);
    redis.stop();

    let memory = std::mem::take(&mut *memory.lock().unwrap());
    let report = BrokerReport {
        runtime,
        plan,
        fleet: &fleet,
        windows: fleet.recorder.take(),
        ticker: &ticker,
        phases,
        memory,
        outage: (stopped_at, restarted_at),
        slow: (slow_from, slow_to),
        last_tick,
        missing,
        crashed,
    };
    let failures = report.failures();
    Ok((report.markdown(&failures), failures.is_empty()))
}

struct BrokerReport<'a> {
    runtime: &'a str,
    plan: &'a BrokerPlan,
    fleet: &'a Fleet,
    windows: Vec<Window>,
    ticker: &'a Ticker,
    phases: Vec<Phase>,
    memory: Vec<Samples>,
    /// When Redis was stopped and when it answered again (unix µs).
    outage: (u64, u64),
    /// When Redis was slow (unix µs).
    slow: (u64, u64),
    last_tick: u64,
    missing: (u64, u64),
    crashed: Vec<String>,
}

impl BrokerReport<'_> {
    /// Whether the ticks of `gap` were all broadcast within `window` (unix
    /// µs), give or take a second before and [`RESUME_WITHIN`] after.
    fn gap_within(&self, gap: &Gap, window: (u64, u64)) -> bool {
        let from = window.0.saturating_sub(1_000_000);
        let to = window.1 + RESUME_WITHIN.as_micros() as u64;
        let first = self.ticker.sent_at(gap.after + 1);
        let last = self.ticker.sent_at(gap.got - 1);
        matches!((first, last), (Some(first), Some(last)) if first >= from && last <= to)
    }

    /// Where a gap in the ticks may be: while Redis was away (a broadcast
    /// made then reaches its own server's clients only); with the Streams
    /// adapter also while it was slow (a server whose reader falls more
    /// than `max_len` entries behind finds them trimmed). `None`: nowhere.
    fn gap_allowed(&self, gap: &Gap) -> Option<&'static str> {
        if self.gap_within(gap, self.outage) {
            return Some("away");
        }
        let streams = matches!(self.plan.cluster, Cluster::Streams { .. });
        (streams && self.gap_within(gap, self.slow)).then_some("slow")
    }

    /// The peak memory of `server` within `phase`, in KiB.
    fn peak(&self, server: usize, phase: &Phase) -> u64 {
        self.memory[server]
            .iter()
            .filter(|(at, _)| *at >= phase.from.as_secs_f64() && *at < phase.to.as_secs_f64())
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0)
    }

    /// The windows (seconds) of `phase`.
    fn windows_of(&self, phase: &Phase) -> &[Window] {
        let from = (phase.from.as_secs() as usize).min(self.windows.len());
        let to = (phase.to.as_secs() as usize).min(self.windows.len());
        &self.windows[from..to]
    }

    fn failures(&self) -> Vec<String> {
        let c = &self.fleet.counters;
        let mut failures = Vec::new();
        // Local traffic in every whole second of the run.
        let end = self
            .phases
            .last()
            .map_or(0, |phase| phase.to.as_secs() as usize);
        let quiet: Vec<usize> = self.windows[..end.min(self.windows.len())]
            .iter()
            .enumerate()
            .filter(|(_, window)| window.said == 0 || window.ack.is_empty())
            .map(|(second, _)| second)
            .collect();
        if !quiet.is_empty() {
            failures.push(format!("no local traffic in seconds {quiet:?}"));
        }
        for (what, count) in [
            ("failed acks", c.ack_failures.load(Relaxed)),
            ("says out of sequence", c.said_faults.load(Relaxed)),
            ("relayed says never received", self.missing.1),
            ("ticks never received at the end", self.missing.0),
            ("disconnects", c.disconnects.load(Relaxed)),
        ] {
            if count != 0 {
                failures.push(format!("{count} {what}"));
            }
        }
        let gaps = c.gaps.lock().unwrap();
        let repeats = c.tick_faults.load(Relaxed) - gaps.len() as u64;
        if repeats != 0 {
            failures.push(format!("{repeats} ticks received twice or out of order"));
        }
        let stray: Vec<&Gap> = gaps
            .iter()
            .filter(|gap| self.gap_allowed(gap).is_none())
            .collect();
        if !stray.is_empty() {
            // Which ticks, when (seconds after Redis came back).
            let back = self.outage.1 as f64 / 1e6;
            let at = |n: u64| {
                self.ticker
                    .sent_at(n)
                    .map_or(f64::NAN, |micros| micros as f64 / 1e6 - back)
            };
            let mut spans: Vec<(u64, u64)> = stray.iter().map(|gap| (gap.after, gap.got)).collect();
            spans.sort_unstable();
            spans.dedup();
            let some: Vec<String> = spans
                .iter()
                .take(8)
                .map(|(after, got)| {
                    format!(
                        "{}..{} ({:+.1} s..{:+.1} s)",
                        after + 1,
                        got - 1,
                        at(after + 1),
                        at(got - 1)
                    )
                })
                .collect();
            failures.push(format!(
                "{} gaps in the ticks where none may be, such as ticks {}",
                stray.len(),
                some.join(", ")
            ));
        }
        if let Some(first) = self.phases.first() {
            for server in 0..self.memory.len() {
                let base = self.peak(server, first);
                let peak = self.memory[server]
                    .iter()
                    .map(|(_, kib)| *kib)
                    .max()
                    .unwrap_or(0);
                if peak > base + MEMORY_ALLOWANCE {
                    failures.push(format!(
                        "server {server} grew from {} MiB to {} MiB",
                        base / 1024,
                        peak / 1024
                    ));
                }
            }
        }
        failures.extend(self.crashed.iter().cloned());
        failures
    }

    fn markdown(&self, failures: &[String]) -> String {
        let p = self.plan;
        let c = &self.fleet.counters;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Broker faults, servers on {}, {} adapter\n",
            self.runtime,
            p.cluster.as_arg()
        );
        let _ = writeln!(
            out,
            "{} clients (a third each WebSocket, long-polling, polling upgraded), each room's \
             on one of two servers, a say per client every {:?} (local); a publisher's tick \
             every {:?} (cross-server). Redis stopped for {:?}; slow: {:?} late (plus up to \
             {:?}) at {} KiB/s per connection.\n",
            p.connections,
            p.say_every,
            p.tick_every,
            p.outage,
            p.slow.latency,
            p.slow.jitter,
            p.slow.bandwidth.unwrap_or(0) / 1024,
        );
        let _ = writeln!(
            out,
            "| phase | seconds | says acked / s | relayed / s | ticks received / s | ack p99 / max (ms) | server RSS peak A / B (MiB) |"
        );
        let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | --- | --- |");
        for phase in &self.phases {
            let windows = self.windows_of(phase);
            let seconds = windows.len().max(1) as f64;
            let acks: u64 = windows.iter().map(|w| w.ack.len()).sum();
            let said: u64 = windows.iter().map(|w| w.said).sum();
            let ticks: u64 = windows.iter().map(|w| w.tick.len()).sum();
            let p99 = windows
                .iter()
                .map(|w| w.ack.value_at_quantile(0.99))
                .max()
                .unwrap_or(0);
            let max = windows.iter().map(|w| w.ack.max()).max().unwrap_or(0);
            let _ = writeln!(
                out,
                "| {} | {:.0}–{:.0} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} |",
                phase.name,
                phase.from.as_secs_f64(),
                phase.to.as_secs_f64(),
                acks as f64 / seconds,
                said as f64 / seconds,
                ticks as f64 / seconds,
                p99 as f64 / 1000.0,
                max as f64 / 1000.0,
                self.peak(0, phase) as f64 / 1024.0,
                self.peak(1, phase) as f64 / 1024.0,
            );
        }
        let gaps = c.gaps.lock().unwrap();
        // Ticks lost and gaps, of the gaps allowed `when`.
        let lost = |when: Option<&str>| -> (u64, usize) {
            gaps.iter()
                .filter(|gap| self.gap_allowed(gap) == when)
                .fold((0, 0), |(ticks, count), gap| {
                    (ticks + gap.got - gap.after - 1, count + 1)
                })
        };
        let (away, away_gaps) = lost(Some("away"));
        let (slow, slow_gaps) = lost(Some("slow"));
        let (stray, stray_gaps) = lost(None);
        let _ = writeln!(
            out,
            "\nTicks: {} sent, {} received; lost while Redis was away {away} in {away_gaps} gaps \
             (a broadcast made then reaches its own server's clients only), while it was slow \
             {slow} in {slow_gaps} gaps (Streams: a reader more than `max_len` entries behind \
             finds them trimmed), elsewhere {stray} in {stray_gaps} gaps; says: {} acked, {} \
             relayed, failed acks {}, out of sequence {}; disconnects {}.\n",
            self.last_tick,
            c.ticks.load(Relaxed),
            c.says.load(Relaxed),
            c.said.load(Relaxed),
            c.ack_failures.load(Relaxed),
            c.said_faults.load(Relaxed),
            c.disconnects.load(Relaxed),
        );
        let reasons = c.reasons.lock().unwrap();
        let departures = c.departures.lock().unwrap();
        super::verdict(&mut out, failures, reasons.iter().chain(departures.iter()));
        out
    }
}
