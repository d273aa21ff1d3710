//! A soak run's figures and verdict, as Markdown.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::fleet::{Counters, Window};
use super::Plan;

/// Memory samples of one process over one report window, in KiB.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    samples: Vec<u64>,
}

impl Memory {
    /// Adds a sample.
    pub fn add(&mut self, kib: u64) {
        self.samples.push(kib);
    }

    /// The mean of the window's samples.
    pub fn mean(&self) -> u64 {
        self.samples.iter().sum::<u64>() / (self.samples.len() as u64).max(1)
    }

    /// The largest sample.
    pub fn max(&self) -> u64 {
        self.samples.iter().copied().max().unwrap_or(0)
    }
}

/// Everything one run measured.
pub struct Run<'a> {
    /// The server's runtime.
    pub runtime: &'a str,
    /// What was run.
    pub plan: &'a Plan,
    /// How long connecting every client took.
    pub connecting: Duration,
    /// The server's resident memory after connecting, before the load.
    pub rss_connected: u64,
    /// The server's memory per window.
    pub server_memory: Vec<Memory>,
    /// The server's CPU time over the load.
    pub server_cpu: Duration,
    /// The clients' counters.
    pub counters: &'a Counters,
    /// The clients' latencies per window.
    pub windows: Vec<Window>,
    /// The server's last tick.
    pub last_tick: u64,
    /// Ticks and relayed says never received, at the end.
    pub missing: (u64, u64),
    /// Ticks and relayed says the clients should have received in all.
    pub expected: (u64, u64),
}

impl Run<'_> {
    /// Why the run failed, if it did: each line one broken promise.
    pub fn failures(&self) -> Vec<String> {
        let c = self.counters;
        let mut failures = Vec::new();
        let mut zero = |what: &str, count: u64| {
            if count != 0 {
                failures.push(format!("{count} {what}"));
            }
        };
        zero("unexpected disconnects", c.disconnects.load(Relaxed));
        zero("connections closed", c.closes.load(Relaxed));
        zero("reconnection attempts", c.reconnect_attempts.load(Relaxed));
        zero("connect errors", c.connect_errors.load(Relaxed));
        zero("failed acks", c.ack_failures.load(Relaxed));
        zero("ticks out of sequence", c.tick_faults.load(Relaxed));
        zero("says out of sequence", c.said_faults.load(Relaxed));
        zero("ticks never received", self.missing.0);
        zero("relayed says never received", self.missing.1);
        let received = (c.ticks.load(Relaxed), c.said.load(Relaxed));
        if received != self.expected {
            failures.push(format!(
                "received {} ticks and {} says, expected {} and {}",
                received.0, received.1, self.expected.0, self.expected.1
            ));
        }
        if self.last_tick == 0 {
            failures.push("no tick was sent".to_owned());
        }
        if let (Some(first), Some(last)) = (self.server_memory.first(), self.server_memory.last()) {
            let limit = first.mean() as f64 * (1.0 + self.plan.rss_growth_limit);
            if last.mean() as f64 > limit {
                failures.push(format!(
                    "server memory grew from {} KiB (first window) to {} KiB (last), over {:.0}%",
                    first.mean(),
                    last.mean(),
                    self.plan.rss_growth_limit * 100.0
                ));
            }
        }
        failures
    }

    /// The run as a Markdown section.
    pub fn markdown(&self) -> String {
        let p = self.plan;
        let c = self.counters;
        let mut out = String::new();
        let _ = writeln!(out, "### Server on {}\n", self.runtime);
        let _ = writeln!(
            out,
            "{} clients (a third each WebSocket, long-polling, polling upgraded), rooms of {}, \
             recovery on; heartbeat {:?} / {:?}; a say per client every {:?}, a tick to all \
             every {:?}; load {:?} after connecting in {:.1} s.\n",
            p.connections,
            p.room_size,
            p.ping_interval,
            p.ping_timeout,
            p.say_every,
            p.tick_every,
            p.load,
            self.connecting.as_secs_f64()
        );
        let load = p.load.as_secs_f64().max(1.0);
        let _ = writeln!(out, "| delivered | count | per second |");
        let _ = writeln!(out, "| --- | ---: | ---: |");
        for (what, count) in [
            ("ticks received", c.ticks.load(Relaxed)),
            ("says emitted (acked)", c.says.load(Relaxed)),
            ("says relayed, received", c.said.load(Relaxed)),
        ] {
            let _ = writeln!(out, "| {what} | {count} | {:.0} |", count as f64 / load);
        }
        let _ = writeln!(
            out,
            "\nServer CPU over the load: {:.1} s ({:.0}% of one core). Server memory: {} MiB \
             once connected.\n",
            self.server_cpu.as_secs_f64(),
            100.0 * self.server_cpu.as_secs_f64() / load,
            self.rss_connected / 1024
        );
        let _ = writeln!(
            out,
            "| window | server RSS mean / max (MiB) | tick latency p50 / p99 / max (ms) | ack latency p50 / p99 / max (ms) |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        let rows = self.server_memory.len().max(self.windows.len());
        for row in 0..rows {
            let start = p.window.as_secs() * row as u64;
            let memory = self.server_memory.get(row).map_or("-".to_owned(), |m| {
                format!(
                    "{:.1} / {:.1}",
                    m.mean() as f64 / 1024.0,
                    m.max() as f64 / 1024.0
                )
            });
            let (tick, ack) = self
                .windows
                .get(row)
                .map_or(("-".to_owned(), "-".to_owned()), |w| {
                    (percentiles(&w.tick), percentiles(&w.ack))
                });
            let _ = writeln!(
                out,
                "| {start}–{} s | {memory} | {tick} | {ack} |",
                start + p.window.as_secs()
            );
        }
        let _ = writeln!(
            out,
            "\nUnexpected disconnects {}, connections closed {}, reconnection attempts {}, \
             connect errors {}, recovered sessions {}, failed acks {}, ticks out of sequence \
             {}, says out of sequence {}, never received: {} ticks, {} says (last tick {}).\n",
            c.disconnects.load(Relaxed),
            c.closes.load(Relaxed),
            c.reconnect_attempts.load(Relaxed),
            c.connect_errors.load(Relaxed),
            c.recovered.load(Relaxed),
            c.ack_failures.load(Relaxed),
            c.tick_faults.load(Relaxed),
            c.said_faults.load(Relaxed),
            self.missing.0,
            self.missing.1,
            self.last_tick
        );
        let failures = self.failures();
        let reasons = c.reasons.lock().unwrap();
        let departures = c.departures.lock().unwrap();
        super::verdict(&mut out, &failures, reasons.iter().chain(departures.iter()));
        out
    }
}

fn percentiles(histogram: &hdrhistogram::Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "-".to_owned();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1}",
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}
