//! `bench`: the benchmark runner and load generator.
//!
//! `bench run` starts every server in turn (pinned to one core), loads it
//! from this process (pinned to the other), alternates them over rounds and
//! prints the report; `bench load` loads a server already running.
//! `scripts/bench` builds everything in release mode and calls `bench run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use bench::probe::Probe;
use bench::runner::{Places, Server};
use bench::scenario::{Scenario, Settings};
use bench::BenchError;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Socket.IO server benchmarks: ours, socketioxide and Node, side by side")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios against every server, alternated over rounds.
    Run {
        #[command(flatten)]
        size: Size,
        /// Rounds: each server runs each scenario once per round.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Only these servers (repeatable; default all).
        #[arg(long = "server", value_enum)]
        servers: Vec<Server>,
        /// Only these scenarios (repeatable; default all).
        #[arg(long = "scenario", value_enum)]
        scenarios: Vec<Scenario>,
        /// Pin nothing (default: servers on core 0, this process on core 1).
        #[arg(long)]
        no_pin: bool,
        /// Where the report (report.md) and raw figures (results.json) go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
    },
    /// Loads one server already listening (no CPU or memory figures unless
    /// `--pid` names its process).
    Load {
        #[command(flatten)]
        size: Size,
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// The scenario.
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// The server's process id, to read its CPU time and memory.
        #[arg(long)]
        pid: Option<u32>,
    },
}

#[derive(Args)]
struct Size {
    /// Shorter windows (2 s measured instead of 5).
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// Tiny sizes: checks the harness against every server in seconds.
    #[arg(long)]
    smoke: bool,
}

impl Size {
    fn settings(&self) -> Settings {
        if self.smoke {
            Settings::smoke()
        } else if self.quick {
            Settings::quick()
        } else {
            Settings::full()
        }
    }
}

/// Pins this process (all its threads, and those it starts later) to `cpu`.
fn pin_self(cpu: usize) -> Result<(), BenchError> {
    let status = std::process::Command::new("taskset")
        .args([
            "-a",
            "-cp",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(BenchError::Protocol(
            "taskset failed (install util-linux or pass --no-pin)".into(),
        ));
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    if let Err(error) = local.block_on(&runtime, run(cli.command)) {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<(), BenchError> {
    match command {
        Command::Run {
            size,
            rounds,
            servers,
            scenarios,
            no_pin,
            out,
        } => {
            let servers = if servers.is_empty() {
                Server::ALL.to_vec()
            } else {
                servers
            };
            let scenarios = if scenarios.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                scenarios
            };
            let server_cpu = if no_pin {
                None
            } else {
                pin_self(1)?;
                Some(0)
            };
            let places = Places::default_for(server_cpu)?;
            let settings = size.settings();
            let results =
                bench::runner::run_all(&scenarios, &servers, rounds, &settings, &places).await?;
            let report = bench::report::markdown(&results, rounds);
            println!("{report}");
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("report.md"), &report)?;
            let raw: Vec<_> = results
                .iter()
                .map(|((scenario, server), outcomes)| {
                    serde_json::json!({
                        "scenario": scenario.name(),
                        "server": server.name(),
                        "outcomes": outcomes,
                    })
                })
                .collect();
            let raw = serde_json::to_string_pretty(&raw).expect("figures serialize");
            std::fs::write(out.join("results.json"), raw)?;
            eprintln!("report written to {}", out.join("report.md").display());
            Ok(())
        }
        Command::Load {
            size,
            addr,
            scenario,
            pid,
        } => {
            let probe = pid.map_or(Probe::none(), Probe::of);
            let outcome = bench::scenario::run(scenario, addr, probe, &size.settings()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome).expect("figures serialize")
            );
            println!(
                "rate: {:.0}/s, server CPU per item: {:.2} µs",
                outcome.rate(),
                outcome.cpu_per_item_us()
            );
            Ok(())
        }
    }
}
