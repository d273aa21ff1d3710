//! The soak ([`suite::soak`]), in two kinds:
//!
//! - `soak [load]`: starts `soak-server` (beside this binary) on each
//!   runtime asked for, connects the clients, runs the load, checks every
//!   delivery, samples the server's memory and CPU.
//! - `soak kill`: two servers on Redis Streams behind a balancer, killed in
//!   turn in the middle of the ticks ([`suite::soak::kill`]), with
//!   connection state recovery and without.
//! - `soak broker`: two servers on Redis, which is stopped, restarted and
//!   slowed down under local and cross-server traffic
//!   ([`suite::soak::broker`]), with the classic and the Streams adapter.
//! - `soak network`: our Rust clients and the official Node client emit
//!   with acks and retries through a relay that delays, stalls and cuts
//!   their connections at random from `--seed` ([`suite::soak::network`]).
//!
//! Each writes a Markdown report and exits non-zero if any run failed.
//!
//! Usage: `soak [load|kill|broker|network] [--smoke] [--runtime tokio|smol]...
//! [--connections N] [--minutes M] [--seed S] [--out FILE]` (`scripts/soak` builds and
//! runs it). Default: the full plans on tokio then smol, the report in
//! `target/soak/report.md` (`kill-report.md`, `broker-report.md`,
//! `network-report.md`).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio::client::{ClientOptions, ClientSocket, Transports};
use socketio::Payload;
use suite::soak::broker::{self, BrokerPlan};
use suite::soak::fleet::{Fleet, STEP};
use suite::soak::kill::{self, KillPlan};
use suite::soak::network::{self, NetworkPlan};
use suite::soak::process::{cpu, rss, ServerProcess};
use suite::soak::report::{Memory, Run};
use suite::soak::{Cluster, Plan, ServerSettings};
use suite::TestRuntime;

/// How long the clients may take to receive what is still on its way once
/// the load stops.
const SETTLE: Duration = Duration::from_secs(30);

enum Kind {
    Load,
    Kill,
    Broker,
    Network,
}

struct Options {
    kind: Kind,
    smoke: bool,
    runtimes: Vec<String>,
    connections: Option<usize>,
    minutes: Option<f64>,
    seed: Option<u64>,
    out: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak [load|kill|broker|network] [--smoke] [--runtime tokio|smol]... [--connections N] \
         [--minutes M] [--seed S] [--out FILE]"
    );
    std::process::exit(2);
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1).peekable();
    let kind = match args.peek().map(String::as_str) {
        Some("load") => Kind::Load,
        Some("kill") => Kind::Kill,
        Some("broker") => Kind::Broker,
        Some("network") => Kind::Network,
        _ => {
            // No kind given: the load.
            let mut options = parse_rest(args);
            options.kind = Kind::Load;
            return options;
        }
    };
    args.next();
    let mut options = parse_rest(args);
    options.kind = kind;
    options
}

fn parse_rest(mut args: impl Iterator<Item = String>) -> Options {
    let mut options = Options {
        kind: Kind::Load,
        smoke: false,
        runtimes: Vec::new(),
        connections: None,
        minutes: None,
        seed: None,
        out: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--smoke" => options.smoke = true,
            "--runtime" => options.runtimes.push(value()),
            "--connections" => {
                options.connections = Some(value().parse().unwrap_or_else(|_| usage()))
            }
            "--minutes" => options.minutes = Some(value().parse().unwrap_or_else(|_| usage())),
            "--seed" => options.seed = Some(value().parse().unwrap_or_else(|_| usage())),
            "--out" => options.out = Some(PathBuf::from(value())),
            _ => usage(),
        }
    }
    if options.runtimes.is_empty() {
        options.runtimes = vec!["tokio".to_owned(), "smol".to_owned()];
    }
    if options.runtimes.iter().any(|r| r != "tokio" && r != "smol") {
        usage();
    }
    options
}

fn main() {
    let options = parse();
    let (title, default_out) = match options.kind {
        Kind::Load => ("## Soak\n\n", "target/soak/report.md"),
        Kind::Kill => ("## Kills\n\n", "target/soak/kill-report.md"),
        Kind::Broker => ("## Broker faults\n\n", "target/soak/broker-report.md"),
        Kind::Network => ("## Network faults\n\n", "target/soak/network-report.md"),
    };
    let out = options.out.clone().unwrap_or_else(|| default_out.into());
    let mut report = String::from(title);
    let mut failed = false;
    for runtime in &options.runtimes {
        let sections = match options.kind {
            Kind::Load => {
                let mut plan = if options.smoke {
                    Plan::smoke()
                } else {
                    Plan::full()
                };
                if let Some(connections) = options.connections {
                    plan.connections = connections;
                }
                if let Some(minutes) = options.minutes {
                    plan.load = Duration::from_secs_f64(minutes * 60.0);
                }
                eprintln!("soak: server on {runtime}, {plan:?}");
                vec![(
                    runtime_tokio::TokioRuntime::block_on(load(runtime, &plan)),
                    format!("### Server on {runtime}"),
                )]
            }
            Kind::Kill => [true, false]
                .into_iter()
                .map(|recovery| {
                    let mut plan = if options.smoke {
                        KillPlan::smoke(recovery)
                    } else {
                        KillPlan::full(recovery)
                    };
                    if let Some(connections) = options.connections {
                        plan.connections = connections;
                    }
                    eprintln!("soak kill: servers on {runtime}, {plan:?}");
                    (
                        runtime_tokio::TokioRuntime::block_on(kill::run(runtime, &plan)),
                        format!("### Kills, servers on {runtime}, recovery {recovery}"),
                    )
                })
                .collect(),
            Kind::Broker => [Cluster::Classic, Cluster::Streams { recovery: true }]
                .into_iter()
                .map(|cluster| {
                    let mut plan = if options.smoke {
                        BrokerPlan::smoke(cluster)
                    } else {
                        BrokerPlan::full(cluster)
                    };
                    if let Some(connections) = options.connections {
                        plan.connections = connections;
                    }
                    eprintln!("soak broker: servers on {runtime}, {plan:?}");
                    (
                        runtime_tokio::TokioRuntime::block_on(broker::run(runtime, &plan)),
                        format!(
                            "### Broker faults, servers on {runtime}, {}",
                            cluster.as_arg()
                        ),
                    )
                })
                .collect(),
            Kind::Network => {
                let seed = options.seed.unwrap_or(1);
                let mut plan = if options.smoke {
                    NetworkPlan::smoke(seed)
                } else {
                    NetworkPlan::full(seed)
                };
                if let Some(connections) = options.connections {
                    plan.rust_clients = connections / 2;
                    plan.node_clients = connections - connections / 2;
                }
                eprintln!("soak network: server on {runtime}, {plan:?}");
                vec![(
                    runtime_tokio::TokioRuntime::block_on(network::run(runtime, &plan)),
                    format!("### Network faults, server on {runtime}"),
                )]
            }
        };
        for (section, title) in sections {
            let (markdown, passed) = match section {
                Ok(done) => done,
                Err(error) => (format!("{title}\n\n**Failed:** {error}\n"), false),
            };
            println!("{markdown}");
            report.push_str(&markdown);
            report.push('\n');
            failed |= !passed;
        }
    }
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&out, &report) {
        Ok(()) => eprintln!("soak: report in {}", out.display()),
        Err(error) => eprintln!("soak: cannot write {}: {error}", out.display()),
    }
    std::process::exit(i32::from(failed));
}

async fn control_client(url: &str) -> Result<ClientSocket, String> {
    let options = ClientOptions::default()
        .transports(Transports::WEBSOCKET)
        .auth(&json!({ "control": true }))
        .map_err(|e| e.to_string())?;
    let control = socketio::client::io(runtime_tokio::TokioRuntime, url, options)
        .map_err(|e| e.to_string())?;
    control
        .connect()
        .await
        .map_err(|e| format!("control: {e}"))?;
    Ok(control)
}

/// One load run against a server on `runtime`: the report section and
/// whether it passed.
async fn load(runtime: &str, plan: &Plan) -> Result<(String, bool), String> {
    let server = ServerProcess::start(runtime, ServerSettings::of(plan), None)?;
    let pid = server.pid();
    let url = server.url();

    let connecting = Instant::now();
    let mut fleet = Fleet::connect(&url, plan).await?;
    let connecting = connecting.elapsed();
    eprintln!(
        "soak: {} clients connected in {:.1} s",
        plan.connections,
        connecting.as_secs_f64()
    );
    let control = control_client(&url).await?;
    let rss_connected = rss(pid).unwrap_or(0);

    // Memory per window, sampled every second from the load's start.
    let memory: Arc<Mutex<Vec<Memory>>> = Arc::default();
    let sampling = tokio::spawn({
        let memory = memory.clone();
        let window = plan.window;
        async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let row = (started.elapsed().as_micros() / window.as_micros()) as usize;
                let Some(kib) = rss(pid) else {
                    eprintln!("soak: cannot read the server's memory");
                    continue;
                };
                let mut memory = memory.lock().unwrap();
                while memory.len() <= row {
                    memory.push(Memory::default());
                }
                memory[row].add(kib);
            }
        }
    });
    let cpu_before = cpu(pid);
    fleet.start_talking();
    control
        .emit_with_ack("start", Payload::empty(), Some(STEP))
        .await
        .map_err(|e| format!("start: {e}"))?;
    let progress = tokio::spawn({
        let counters = fleet.counters.clone();
        let window = plan.window;
        async move {
            loop {
                tokio::time::sleep(window).await;
                eprintln!(
                    "soak: ticks {}, says {}, relayed {}, disconnects {}, faults {}",
                    counters.ticks.load(Relaxed),
                    counters.says.load(Relaxed),
                    counters.said.load(Relaxed),
                    counters.disconnects.load(Relaxed),
                    counters.tick_faults.load(Relaxed) + counters.said_faults.load(Relaxed),
                );
            }
        }
    });
    tokio::time::sleep(plan.load).await;
    sampling.abort();
    progress.abort();
    fleet.stop_talking().await;
    let last_tick: u64 = control
        .emit_with_ack("stop", Payload::empty(), Some(STEP))
        .await
        .map_err(|e| format!("stop: {e}"))?
        .first()
        .map_err(|e| format!("stop: {e}"))?;
    let server_cpu = cpu(pid).saturating_sub(cpu_before);

    // What was sent is on its way: give it time to arrive.
    let settle = Instant::now() + SETTLE;
    let mut missing = fleet.missing(last_tick);
    while missing != (0, 0) && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(200)).await;
        missing = fleet.missing(last_tick);
    }
    fleet.close();
    control.disconnect();

    let mut server_memory = std::mem::take(&mut *memory.lock().unwrap());
    // A window cut short by the end of the load says little about memory.
    let full_windows = (plan.load.as_secs() / plan.window.as_secs().max(1)) as usize;
    server_memory.truncate(full_windows.max(1));
    let run = Run {
        runtime,
        plan,
        connecting,
        rss_connected,
        server_memory,
        server_cpu,
        counters: &fleet.counters,
        windows: fleet.recorder.take(),
        last_tick,
        missing,
        expected: fleet.expected(last_tick),
    };
    let passed = run.failures().is_empty();
    Ok((run.markdown(), passed))
}
