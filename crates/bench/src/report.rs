//! The report: per scenario, each server's median over the rounds, and its
//! ratio to socketioxide measured in the same run; then the targets.

use std::fmt::Write;

use crate::runner::{Results, Server};
use crate::scenario::{Outcome, Scenario};

/// The median of `values` (the lower middle one for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// One server's medians in one scenario.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Items per second.
    pub rate: f64,
    /// Server CPU per item, microseconds.
    pub cpu_us: f64,
    /// Median latency, microseconds.
    pub p50_us: Option<f64>,
    /// 99th percentile latency, microseconds.
    pub p99_us: Option<f64>,
    /// Resident bytes per connection (ramp).
    pub memory: Option<f64>,
    /// Bytes on the wire per item, both ways (chat scenarios).
    pub wire_bytes: Option<f64>,
    /// The smallest and largest CPU per item over the rounds.
    pub cpu_range: (f64, f64),
    /// The share of the CPU time spent in the kernel.
    pub kernel_share: f64,
}

/// Medians of one server's outcomes in one scenario.
pub fn summarize(outcomes: &[Outcome]) -> Option<Summary> {
    let pick =
        |f: &dyn Fn(&Outcome) -> Option<f64>| median(outcomes.iter().filter_map(f).collect());
    let cpus: Vec<f64> = outcomes.iter().map(Outcome::cpu_per_item_us).collect();
    Some(Summary {
        rate: pick(&|o| Some(o.rate()))?,
        cpu_us: median(cpus.clone())?,
        p50_us: pick(&|o| o.latency.map(|l| l.p50_us as f64)),
        p99_us: pick(&|o| o.latency.map(|l| l.p99_us as f64)),
        memory: pick(&|o| o.memory_per_connection),
        wire_bytes: pick(&|o| o.wire_bytes_per_item),
        kernel_share: pick(&|o| Some(o.kernel_share()))?,
        cpu_range: (
            cpus.iter().copied().fold(f64::INFINITY, f64::min),
            cpus.iter().copied().fold(0.0, f64::max),
        ),
    })
}

fn what_is_counted(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Echo => "echo round trips over WebSocket",
        Scenario::Ack => "ack round trips over WebSocket",
        Scenario::Broadcast => "broadcast deliveries (one sender, every client receives)",
        Scenario::Ramp => "connections opened (WebSocket + Socket.IO CONNECT)",
        Scenario::Polling => "echo round trips over HTTP long-polling",
        Scenario::Chat32 => "echo round trips of a 32-byte JSON chat message (our Rust client)",
        Scenario::Chat32Deflate => {
            "echo round trips of a 32-byte JSON chat message, permessage-deflate on (our Rust client)"
        }
        Scenario::Chat1k => "echo round trips of a 1 KiB JSON chat message (our Rust client)",
        Scenario::Chat1kDeflate => {
            "echo round trips of a 1 KiB JSON chat message, permessage-deflate on (our Rust client)"
        }
        Scenario::Idle => "connections that echoed one 1 KiB message, then idle (our Rust client)",
        Scenario::IdleDeflate => {
            "connections that echoed one 1 KiB message with permessage-deflate, then idle (our Rust client)"
        }
        Scenario::IdleDeflateLean => {
            "the same without context takeover (no compression state between messages)"
        }
    }
}

fn ratio(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(reference) if reference > 0.0 => format!("{:.2}×", value / reference),
        _ => "–".into(),
    }
}

fn micros(value: Option<f64>) -> String {
    match value {
        Some(us) if us >= 1000.0 => format!("{:.2} ms", us / 1000.0),
        Some(us) => format!("{us:.0} µs"),
        None => "–".into(),
    }
}

/// The report of a run, in Markdown.
pub fn markdown(results: &Results, rounds: usize) -> String {
    let mut out = String::new();
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| results.keys().any(|(scenario, _)| scenario == s))
        .collect();
    for scenario in scenarios {
        let summaries: Vec<(Server, Summary)> = Server::ALL
            .into_iter()
            .filter_map(|server| {
                let outcomes = results.get(&(scenario, server))?;
                Some((server, summarize(outcomes)?))
            })
            .collect();
        let reference = summaries
            .iter()
            .find(|(server, _)| *server == Server::Socketioxide)
            .map(|(_, summary)| *summary);
        let _ = writeln!(
            out,
            "### {} — {}\n\nMedians of {rounds} round(s); ratios are to socketioxide in the same run.\n",
            scenario.name(),
            what_is_counted(scenario)
        );
        let _ = writeln!(
            out,
            "| server | rate /s | rate ratio | p50 | p99 | server CPU per item (kernel share) | CPU ratio (min–max over rounds) | memory per connection | bytes on the wire per item |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (server, s) in &summaries {
            let cpu_ratio = match reference {
                Some(r) if r.cpu_us > 0.0 => format!(
                    "{:.2}× ({:.2}–{:.2})",
                    s.cpu_us / r.cpu_us,
                    s.cpu_range.0 / r.cpu_us,
                    s.cpu_range.1 / r.cpu_us
                ),
                _ => "–".into(),
            };
            let memory = match s.memory {
                Some(bytes) => format!(
                    "{:.1} KiB ({})",
                    bytes / 1024.0,
                    ratio(bytes, reference.and_then(|r| r.memory))
                ),
                None => "–".into(),
            };
            let wire = s
                .wire_bytes
                .map_or_else(|| "–".into(), |bytes| format!("{bytes:.0} B"));
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {} | {:.2} µs ({:.0} %) | {} | {} | {} |",
                server.name(),
                s.rate,
                ratio(s.rate, reference.map(|r| r.rate)),
                micros(s.p50_us),
                micros(s.p99_us),
                s.cpu_us,
                s.kernel_share * 100.0,
                cpu_ratio,
                memory,
                wire,
            );
        }
        out.push('\n');
    }
    out.push_str(&targets(results));
    out
}

/// The targets, checked for each of our servers.
fn targets(results: &Results) -> String {
    let get = |scenario, server| results.get(&(scenario, server)).and_then(|o| summarize(o));
    let mut out = String::from("### Targets (ratios to socketioxide)\n\n| target | ours (tokio) | ours (smol) |\n| --- | --- | --- |\n");
    type Check = (
        &'static str,
        Scenario,
        fn(&Summary, &Summary) -> Option<(f64, bool, String)>,
    );
    let checks: [Check; 6] = [
        ("server CPU per echo ≤ 0.5×", Scenario::Echo, |s, r| {
            let x = s.cpu_us / r.cpu_us;
            Some((x, x <= 0.5, format!("{x:.2}×")))
        }),
        (
            "p99 echo latency ≤ 5 ms at 100×4",
            Scenario::Echo,
            |s, _| {
                let p99 = s.p99_us?;
                Some((p99, p99 <= 5000.0, micros(Some(p99))))
            },
        ),
        (
            "server CPU per broadcast delivery ≤ 0.8×",
            Scenario::Broadcast,
            |s, r| {
                let x = s.cpu_us / r.cpu_us;
                Some((x, x <= 0.8, format!("{x:.2}×")))
            },
        ),
        (
            "server CPU per long-polling round trip ≤ 0.8×",
            Scenario::Polling,
            |s, r| {
                let x = s.cpu_us / r.cpu_us;
                Some((x, x <= 0.8, format!("{x:.2}×")))
            },
        ),
        (
            "memory per idle WebSocket ≤ 10 KiB",
            Scenario::Ramp,
            |s, _| {
                let kib = s.memory? / 1024.0;
                Some((kib, kib <= 10.0, format!("{kib:.1} KiB")))
            },
        ),
        ("connection ramp rate ≥ 1.2×", Scenario::Ramp, |s, r| {
            let x = s.rate / r.rate;
            Some((x, x >= 1.2, format!("{x:.2}×")))
        }),
    ];
    for (label, scenario, check) in checks {
        let Some(reference) = get(scenario, Server::Socketioxide) else {
            continue;
        };
        let cell = |server| match get(scenario, server).and_then(|s| check(&s, &reference)) {
            Some((_, met, shown)) => format!("{shown} {}", if met { "met" } else { "**not met**" }),
            None => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} |",
            cell(Server::OursTokio),
            cell(Server::OursSmol)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_lower_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![]), None);
    }
}
