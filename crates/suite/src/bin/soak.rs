//! The soak ([`suite::soak`]): starts `soak-server` (beside this binary)
//! on each runtime asked for, connects the clients, runs the load, checks
//! every delivery, samples the server's memory and CPU, and writes a
//! Markdown report. Exits non-zero if any run failed.
//!
//! Usage: `soak [--smoke] [--runtime tokio|smol]... [--connections N]
//! [--minutes M] [--out FILE]` (`scripts/soak` builds and runs it).
//! Default: the full plan ([`Plan::full`]) on tokio then smol, the report in
//! `target/soak/report.md`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio::client::{ClientOptions, ClientSocket, Transports};
use socketio::Payload;
use suite::soak::fleet::{Fleet, STEP};
use suite::soak::report::{Memory, Run};
use suite::soak::{Plan, ServerSettings};
use suite::TestRuntime;

/// How long the clients may take to receive what is still on its way once
/// the load stops.
const SETTLE: Duration = Duration::from_secs(30);

struct Options {
    plan: Plan,
    runtimes: Vec<String>,
    out: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak [--smoke] [--runtime tokio|smol]... [--connections N] [--minutes M] [--out FILE]"
    );
    std::process::exit(2);
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let mut plan = Plan::full();
    let mut runtimes = Vec::new();
    let mut connections = None;
    let mut minutes = None;
    let mut out = PathBuf::from("target/soak/report.md");
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--smoke" => plan = Plan::smoke(),
            "--runtime" => runtimes.push(value()),
            "--connections" => connections = Some(value().parse().unwrap_or_else(|_| usage())),
            "--minutes" => minutes = Some(value().parse::<f64>().unwrap_or_else(|_| usage())),
            "--out" => out = PathBuf::from(value()),
            _ => usage(),
        }
    }
    if let Some(connections) = connections {
        plan.connections = connections;
    }
    if let Some(minutes) = minutes {
        plan.load = Duration::from_secs_f64(minutes * 60.0);
    }
    if runtimes.is_empty() {
        runtimes = vec!["tokio".to_owned(), "smol".to_owned()];
    }
    if runtimes.iter().any(|r| r != "tokio" && r != "smol") {
        usage();
    }
    Options {
        plan,
        runtimes,
        out,
    }
}

fn main() {
    let options = parse();
    let mut report = String::from("## Soak\n\n");
    let mut failed = false;
    for runtime in &options.runtimes {
        eprintln!("soak: server on {runtime}, {:?}", options.plan);
        let section = runtime_tokio::TokioRuntime::block_on(soak(runtime, &options.plan));
        let (markdown, passed) = match section {
            Ok(done) => done,
            Err(error) => (
                format!("### Server on {runtime}\n\n**Failed:** {error}\n"),
                false,
            ),
        };
        println!("{markdown}");
        report.push_str(&markdown);
        report.push('\n');
        failed |= !passed;
    }
    if let Some(dir) = options.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&options.out, &report) {
        Ok(()) => eprintln!("soak: report in {}", options.out.display()),
        Err(error) => eprintln!("soak: cannot write {}: {error}", options.out.display()),
    }
    std::process::exit(i32::from(failed));
}

/// The server process, ended when dropped (its standard input closes).
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(runtime: &str, settings: ServerSettings) -> Result<Server, String> {
        let binary = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("soak-server");
        let mut child = Command::new(&binary)
            .arg(runtime)
            .args(settings.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok());
        match port {
            Some(port) => Ok(Server { child, port }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("soak-server said {line:?}"))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid`, in KiB (`VmRSS`), if `/proc` says.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user and system) of process `pid` so far. `/proc` counts it
/// in clock ticks, 100 a second on Linux.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
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

/// One run against a server on `runtime`: the report section and whether
/// it passed.
async fn soak(runtime: &str, plan: &Plan) -> Result<(String, bool), String> {
    let server = Server::start(runtime, ServerSettings::of(plan))?;
    let pid = server.pid();
    let url = format!("http://127.0.0.1:{}/", server.port);

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
                    counters.ticks.load(std::sync::atomic::Ordering::Relaxed),
                    counters.says.load(std::sync::atomic::Ordering::Relaxed),
                    counters.said.load(std::sync::atomic::Ordering::Relaxed),
                    counters
                        .disconnects
                        .load(std::sync::atomic::Ordering::Relaxed),
                    counters
                        .tick_faults
                        .load(std::sync::atomic::Ordering::Relaxed)
                        + counters
                            .said_faults
                            .load(std::sync::atomic::Ordering::Relaxed),
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
