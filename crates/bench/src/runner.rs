//! The runner: starts each server as its own process pinned to one core,
//! runs a scenario against it from this process (pinned to the other),
//! stops it, and alternates the servers over several rounds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::probe::Probe;
use crate::scenario::{self, Outcome, Scenario, Settings};
use crate::BenchError;

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Server {
    /// This project's server on tokio (`bench-server --runtime tokio`).
    OursTokio,
    /// This project's server on smol (`bench-server --runtime smol`).
    OursSmol,
    /// This project's server on tokio with its metrics published through
    /// the `metrics` facade to a Prometheus recorder (`bench-server
    /// --runtime tokio --metrics`): what metrics cost.
    OursTokioMetrics,
    /// socketioxide, latest from crates.io (`bench-socketioxide`).
    Socketioxide,
    /// The official Node socket.io 4.8 (`interop/bench-server.mjs`).
    Node,
    /// No Socket.IO at all: a plain tokio-tungstenite server answering the
    /// benchmark's packets by string matching (`bench-plain-ws`), the
    /// physical limit. WebSocket scenarios only.
    PlainWs,
}

impl Server {
    /// Every server, in report order; socketioxide is the reference of
    /// every ratio.
    pub const ALL: [Server; 6] = [
        Server::OursTokio,
        Server::OursSmol,
        Server::OursTokioMetrics,
        Server::Socketioxide,
        Server::Node,
        Server::PlainWs,
    ];

    /// Whether it can run `scenario` (the plain WebSocket server answers
    /// only the raw client's WebSocket packets; socketioxide has no
    /// permessage-deflate).
    pub fn runs(self, scenario: Scenario) -> bool {
        match self {
            Server::PlainWs => !(scenario == Scenario::Polling || scenario.uses_our_client()),
            Server::Socketioxide => !scenario.deflate(),
            _ => true,
        }
    }

    /// The server's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Server::OursTokio => "ours (tokio)",
            Server::OursSmol => "ours (smol)",
            Server::OursTokioMetrics => "ours (tokio, metrics)",
            Server::Socketioxide => "socketioxide",
            Server::Node => "node socket.io",
            Server::PlainWs => "plain websocket",
        }
    }

    /// The command that starts it, with `flag` (a compression scenario's
    /// [`Scenario::server_flag`]) last.
    fn command(self, places: &Places, flag: Option<&str>) -> Command {
        let (program, arguments): (PathBuf, Vec<&str>) = match self {
            Server::OursTokio => (
                places.binaries.join("bench-server"),
                vec!["--runtime", "tokio", "--port", "0"],
            ),
            Server::OursSmol => (
                places.binaries.join("bench-server"),
                vec!["--runtime", "smol", "--port", "0"],
            ),
            Server::OursTokioMetrics => (
                places.binaries.join("bench-server"),
                vec!["--runtime", "tokio", "--port", "0", "--metrics"],
            ),
            Server::Socketioxide => (
                places.binaries.join("bench-socketioxide"),
                vec!["--port", "0"],
            ),
            Server::Node => (PathBuf::from("node"), vec!["bench-server.mjs", "0"]),
            Server::PlainWs => (places.binaries.join("bench-plain-ws"), vec!["--port", "0"]),
        };
        let mut command = match places.server_cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.args(arguments).args(flag);
        command
            .current_dir(&places.interop)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command
    }
}

/// Where the servers are, and the core they run on.
#[derive(Debug, Clone)]
pub struct Places {
    /// The directory of `bench-server` and `bench-socketioxide` (this
    /// binary's own, by default).
    pub binaries: PathBuf,
    /// `interop/`, with `npm ci` done (Node's server runs from there).
    pub interop: PathBuf,
    /// The core the servers are pinned to (`taskset -c`), if any.
    pub server_cpu: Option<usize>,
}

impl Places {
    /// The binaries beside this one, the workspace's `interop/`.
    pub fn default_for(server_cpu: Option<usize>) -> Result<Places, BenchError> {
        let exe = std::env::current_exe()?;
        let binaries = exe
            .parent()
            .ok_or_else(|| BenchError::Protocol("this binary has no directory".into()))?
            .to_path_buf();
        let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop");
        Ok(Places {
            binaries,
            interop,
            server_cpu,
        })
    }
}

/// A server process, stopped (stdin closed, then killed) when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
    pid: u32,
}

async fn start(server: Server, places: &Places, flag: Option<&str>) -> Result<Running, BenchError> {
    if server == Server::Node && !places.interop.join("node_modules/socket.io").is_dir() {
        return Err(BenchError::Protocol(format!(
            "Node's socket.io is not installed: run `npm ci --prefix {}`",
            places.interop.display()
        )));
    }
    let mut child = server.command(places, flag).spawn().map_err(|error| {
        BenchError::Protocol(format!("cannot start {}: {error}", server.name()))
    })?;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Protocol("the server exited at once".into()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let announced = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(port) = line.strip_prefix("listening ") {
                return Ok(port.trim().parse::<u16>().ok());
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await
    .map_err(|_| BenchError::Protocol(format!("{} did not start in time", server.name())))??;
    let port = announced
        .ok_or_else(|| BenchError::Protocol(format!("{} did not say its port", server.name())))?;
    // Keep reading its output so it never blocks on a full pipe.
    tokio::task::spawn_local(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pid,
    })
}

impl Running {
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Every outcome of a run, by scenario and server, one per round.
pub type Results = BTreeMap<(Scenario, Server), Vec<Outcome>>;

/// Runs every scenario against every server, `rounds` times; the order of
/// the servers rotates from one round to the next.
pub async fn run_all(
    scenarios: &[Scenario],
    servers: &[Server],
    rounds: usize,
    settings: &Settings,
    places: &Places,
) -> Result<Results, BenchError> {
    let mut results = Results::new();
    for round in 0..rounds {
        for &scenario in scenarios {
            for turn in 0..servers.len() {
                let server = servers[(turn + round) % servers.len()];
                if !server.runs(scenario) {
                    continue;
                }
                eprint!(
                    "round {}/{rounds}: {} on {} … ",
                    round + 1,
                    scenario.name(),
                    server.name()
                );
                let running = start(server, places, scenario.server_flag()).await?;
                let outcome =
                    scenario::run(scenario, running.addr, Probe::of(running.pid), settings).await;
                running.stop().await;
                let outcome = outcome.map_err(|error| {
                    BenchError::Protocol(format!(
                        "{} on {}: {error}",
                        scenario.name(),
                        server.name()
                    ))
                })?;
                eprintln!(
                    "{:.0}/s, {:.1} µs CPU each",
                    outcome.rate(),
                    outcome.cpu_per_item_us()
                );
                results.entry((scenario, server)).or_default().push(outcome);
            }
        }
    }
    Ok(results)
}
