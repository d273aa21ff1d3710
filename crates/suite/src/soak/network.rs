//! The network soak: clients reach our server through a [`Relay`] that
//! delays, stalls and cuts their connections at random from a seed. Our
//! Rust clients (in this process) and the official Node client
//! (`interop/soak-client.mjs`, in its own) each emit numbered `put`s with
//! acks and retries (Node's `retries` and `ackTimeout`), while connections
//! break under them and the clients reconnect.
//!
//! What Node's client promises with retries, and what is checked, per
//! client, against what the server recorded (its `ledger`):
//!
//! - emits go one at a time, in order: the server gets the numbers in
//!   order, a number repeated only by its own retries;
//! - an acked emit arrived at least once;
//! - no emit arrived more than `retries + 1` times;
//! - an emit that failed after every try arrived at most that often too;
//!   an emit refused at once (a full queue) never arrived.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use socketio::client::{AckError, ClientOptions, ManagerEvent};
use socketio::Payload;

use super::fleet::transports_of;
use super::process::ServerProcess;
use super::relay::{Faults, Relay};
use super::ServerSettings;

/// What happened to one emit, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acked.
    Acked,
    /// Failed after every try.
    Failed,
    /// Refused when emitted (the queue was full).
    Refused,
}

impl Outcome {
    fn from_letter(letter: char) -> Option<Outcome> {
        match letter {
            'A' => Some(Outcome::Acked),
            'F' => Some(Outcome::Failed),
            'R' => Some(Outcome::Refused),
            _ => None,
        }
    }
}

/// One client's run: its name, what it was told of each emit (put n is at
/// n - 1), and how often it reconnected.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// Its name (the server's ledger key).
    pub name: String,
    /// Each emit's outcome.
    pub outcomes: Vec<Outcome>,
    /// Reconnections.
    pub reconnects: u64,
}

/// What one network soak does.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    /// Rust clients.
    pub rust_clients: usize,
    /// Official Node clients.
    pub node_clients: usize,
    /// Emits per client.
    pub puts: usize,
    /// One emit this often, per client.
    pub put_every: Duration,
    /// The clients' `retries`.
    pub retries: u32,
    /// The clients' `ackTimeout`.
    pub ack_timeout: Duration,
    /// What the relay does.
    pub faults: Faults,
    /// The relay's seed.
    pub seed: u64,
}

impl NetworkPlan {
    /// 200 Rust and 200 Node clients, 600 puts each over a minute; 10 ms
    /// latency plus up to 40 ms; each connection stalls for 4 s with a
    /// chance of 2% a second and is cut with a chance of 2% a second.
    pub fn full(seed: u64) -> NetworkPlan {
        NetworkPlan {
            rust_clients: 200,
            node_clients: 200,
            puts: 600,
            put_every: Duration::from_millis(100),
            retries: 5,
            ack_timeout: Duration::from_secs(1),
            faults: Faults {
                latency: Duration::from_millis(10),
                jitter: Duration::from_millis(40),
                bandwidth: None,
                stall_chance: 0.02,
                stall: Duration::from_secs(4),
                cut_chance: 0.02,
            },
            seed,
        }
    }

    /// 12 clients of each, 80 puts each, faults ten times as likely: for
    /// the test command.
    pub fn smoke(seed: u64) -> NetworkPlan {
        let full = NetworkPlan::full(seed);
        NetworkPlan {
            rust_clients: 12,
            node_clients: 12,
            puts: 80,
            faults: Faults {
                stall_chance: 0.1,
                cut_chance: 0.1,
                ..full.faults
            },
            ..full
        }
    }
}

/// The server's heartbeat here: a stalled connection is noticed within
/// 5 s (a 4 s stall may or may not be).
const SETTINGS: ServerSettings = ServerSettings {
    ping_interval: Duration::from_secs(2),
    ping_timeout: Duration::from_secs(3),
    tick_every: Duration::from_secs(1),
};

/// Runs `plan` with the server on `runtime`: the report section and
/// whether it passed.
pub async fn run(runtime: &str, plan: &NetworkPlan) -> Result<(String, bool), String> {
    let server = ServerProcess::start(runtime, SETTINGS, None)?;
    let relay = Relay::start(server.addr(), plan.seed)
        .await
        .map_err(|e| e.to_string())?;
    relay.set_faults(plan.faults);
    let url = relay.url();

    let rust = join_all((0..plan.rust_clients).map(|i| rust_client(&url, i, plan)));
    let node = node_clients(&url, plan);
    let (rust, node) = futures_util::join!(rust, node);
    relay.set_faults(Faults::default());
    let rust = rust.into_iter().collect::<Result<Vec<_>, _>>()?;
    let node = node?;

    // The server's ledgers, asked directly (not through the relay).
    let control = socketio::client::io(
        runtime_tokio::TokioRuntime,
        &server.url(),
        ClientOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    control
        .connect()
        .await
        .map_err(|e| format!("control: {e}"))?;
    let mut checked = Vec::new();
    for run in rust.iter().chain(&node) {
        let ledger: Vec<u64> = control
            .emit_with_ack(
                "ledger",
                Payload::single(&run.name).expect("a string"),
                Some(super::fleet::STEP),
            )
            .await
            .map_err(|e| format!("ledger: {e}"))?
            .first()
            .map_err(|e| format!("ledger: {e}"))?;
        checked.push((run, check(run, &ledger, plan.retries), ledger));
    }
    control.disconnect();
    let mut crashed = Vec::new();
    let mut server = server;
    if !server.running() {
        crashed.push("the server exited".to_owned());
    }
    crashed.extend(server.panicked());

    let markdown = markdown(runtime, plan, &relay, &checked, &crashed);
    let passed = crashed.is_empty() && checked.iter().all(|(_, problems, _)| problems.is_empty());
    Ok((markdown, passed))
}

/// What is wrong with what the server got from `run`, given Node's
/// promises (see the module's documentation).
pub fn check(run: &ClientRun, ledger: &[u64], retries: u32) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(pair) = ledger.windows(2).find(|pair| pair[1] < pair[0]) {
        problems.push(format!("{}: got {} after {}", run.name, pair[1], pair[0]));
    }
    let mut copies = vec![0u32; run.outcomes.len() + 1];
    for &n in ledger {
        match copies.get_mut(n as usize) {
            Some(count) if n > 0 => *count += 1,
            _ => problems.push(format!("{}: got {n}, never emitted", run.name)),
        }
    }
    for (i, outcome) in run.outcomes.iter().enumerate() {
        let n = i + 1;
        let count = copies[n];
        let wrong = match outcome {
            Outcome::Acked => count == 0 || count > retries + 1,
            Outcome::Failed => count > retries + 1,
            Outcome::Refused => count != 0,
        };
        if wrong {
            problems.push(format!(
                "{}: put {n} {outcome:?}, arrived {count} times",
                run.name
            ));
        }
    }
    problems
}

/// One Rust client: connects through the relay, emits its puts on
/// schedule without waiting for acks (the retry queue sends them one at a
/// time), then waits for every outcome.
async fn rust_client(url: &str, index: usize, plan: &NetworkPlan) -> Result<ClientRun, String> {
    let name = format!("rust-{index}");
    let (_, transports) = transports_of(index);
    let options = ClientOptions::default()
        .transports(transports)
        .retries(plan.retries)
        .ack_timeout(plan.ack_timeout)
        .reconnection_delay(Duration::from_millis(200))
        .reconnection_delay_max(Duration::from_secs(1))
        .max_pending_events(plan.puts + 1);
    let socket = socketio::client::io(runtime_tokio::TokioRuntime, url, options)
        .map_err(|e| e.to_string())?;
    let reconnects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = reconnects.clone();
    socket.manager().on_event(move |event| {
        if let ManagerEvent::Reconnect(_) = event {
            counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // The first connection may itself be cut: the client retries.
    let _ = tokio::time::timeout(Duration::from_secs(30), socket.connect()).await;
    let mut answers = Vec::with_capacity(plan.puts);
    let mut next = tokio::time::Instant::now();
    for n in 1..=plan.puts as u64 {
        tokio::time::sleep_until(next).await;
        next += plan.put_every;
        let payload = Payload::args(&(&name, n)).expect("a name and a number");
        answers.push(tokio::spawn(socket.emit_with_ack("put", payload, None)));
    }

    let mut outcomes = Vec::with_capacity(plan.puts);
    for answer in answers {
        outcomes.push(match answer.await {
            Ok(Ok(_)) => Outcome::Acked,
            Ok(Err(AckError::Emit(_))) => Outcome::Refused,
            _ => Outcome::Failed,
        });
    }
    socket.disconnect();
    Ok(ClientRun {
        name,
        outcomes,
        reconnects: reconnects.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// The official clients: `interop/soak-client.mjs`, one line of JSON per
/// client.
async fn node_clients(url: &str, plan: &NetworkPlan) -> Result<Vec<ClientRun>, String> {
    if plan.node_clients == 0 {
        return Ok(Vec::new());
    }
    let args = [
        url.to_owned(),
        plan.node_clients.to_string(),
        plan.puts.to_string(),
        plan.put_every.as_millis().to_string(),
        plan.retries.to_string(),
        plan.ack_timeout.as_millis().to_string(),
    ];
    // Far more than the clients need: their puts, then every retry.
    let limit = plan.put_every * plan.puts as u32 + Duration::from_secs(120);
    let output = node_output("soak-client.mjs", &args, limit).await?;
    output
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let value: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let outcomes = value["outcomes"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .map(|letter| Outcome::from_letter(letter).ok_or(format!("outcome {letter:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ClientRun {
                name: value["name"].as_str().unwrap_or_default().to_owned(),
                outcomes,
                reconnects: value["reconnects"].as_u64().unwrap_or(0),
            })
        })
        .collect()
}

/// Runs `node <script> <args…>` in `interop/` for at most `limit`; its
/// standard output, when it exits 0. The output goes through a file:
/// hundreds of clients' lines fill a pipe nobody reads until the end.
async fn node_output(script: &str, args: &[String], limit: Duration) -> Result<String, String> {
    let path = std::env::temp_dir().join(format!("soak-{script}-{}.out", std::process::id()));
    let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(crate::node::interop_dir())
        .stdout(file)
        .spawn()
        .map_err(|e| format!("cannot start node (the soak needs Node.js on PATH): {e}"))?;
    let deadline = tokio::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(format!("{script} exited with {status}: {output}")),
        None => Err(format!("{script} did not finish within {limit:?}")),
    }
}

fn markdown(
    runtime: &str,
    plan: &NetworkPlan,
    relay: &Relay,
    checked: &[(&ClientRun, Vec<String>, Vec<u64>)],
    crashed: &[String],
) -> String {
    let f = &plan.faults;
    let tally = relay.tally();
    let mut out = String::new();
    let _ = writeln!(out, "### Network faults, server on {runtime}\n");
    let _ = writeln!(
        out,
        "{} Rust and {} official Node clients (a third each WebSocket, long-polling, polling \
         upgraded), {} puts each every {:?} with retries {} and ack timeout {:?}, through a \
         relay (seed {}) adding {:?} plus up to {:?}, stalling a connection for {:?} with a \
         chance of {}% a second and cutting it with a chance of {}% a second; heartbeat {:?} / \
         {:?}.\n",
        plan.rust_clients,
        plan.node_clients,
        plan.puts,
        plan.put_every,
        plan.retries,
        plan.ack_timeout,
        plan.seed,
        f.latency,
        f.jitter,
        f.stall,
        f.stall_chance * 100.0,
        f.cut_chance * 100.0,
        SETTINGS.ping_interval,
        SETTINGS.ping_timeout,
    );
    let _ = writeln!(
        out,
        "The relay carried {} connections, stalled {} and cut {}.\n",
        tally.connections.load(std::sync::atomic::Ordering::Relaxed),
        tally.stalls.load(std::sync::atomic::Ordering::Relaxed),
        tally.cuts.load(std::sync::atomic::Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "| clients | reconnections | puts acked | failed after every try | refused | arrived twice or more | problems |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, prefix) in [("Rust", "rust-"), ("Node", "node-")] {
        let runs: Vec<_> = checked
            .iter()
            .filter(|(run, _, _)| run.name.starts_with(prefix))
            .collect();
        let count = |outcome: Outcome| -> usize {
            runs.iter()
                .map(|(run, _, _)| run.outcomes.iter().filter(|o| **o == outcome).count())
                .sum()
        };
        let repeated: usize = runs
            .iter()
            .map(|(_, _, ledger)| ledger.windows(2).filter(|pair| pair[0] == pair[1]).count())
            .sum();
        let reconnects: u64 = runs.iter().map(|(run, _, _)| run.reconnects).sum();
        let problems: usize = runs.iter().map(|(_, problems, _)| problems.len()).sum();
        let _ = writeln!(
            out,
            "| {kind} ({}) | {reconnects} | {} | {} | {} | {repeated} | {problems} |",
            runs.len(),
            count(Outcome::Acked),
            count(Outcome::Failed),
            count(Outcome::Refused),
        );
    }
    let problems: Vec<&String> = checked
        .iter()
        .flat_map(|(_, problems, _)| problems)
        .collect();
    if problems.is_empty() && crashed.is_empty() {
        let _ = writeln!(out, "\n**Passed.**");
    } else {
        let _ = writeln!(
            out,
            "\n**Failed:** {} problems.",
            problems.len() + crashed.len()
        );
        for problem in crashed.iter().chain(problems.into_iter().take(20)) {
            let _ = writeln!(out, "- {problem}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcomes: &str) -> ClientRun {
        ClientRun {
            name: "c".to_owned(),
            outcomes: outcomes.chars().filter_map(Outcome::from_letter).collect(),
            reconnects: 0,
        }
    }

    #[test]
    fn what_node_promises_passes() {
        // 2 retried once (its first ack lost), 3 failed having arrived
        // twice, 4 failed having never arrived, 5 refused.
        assert!(check(&run("AAFFR"), &[1, 2, 2, 3, 3], 2).is_empty());
    }

    #[test]
    fn a_broken_promise_is_named() {
        let problems = |outcomes: &str, ledger: &[u64]| check(&run(outcomes), ledger, 1).len();
        assert_eq!(problems("AA", &[1]), 1, "an acked put that never arrived");
        assert_eq!(problems("AA", &[2, 1]), 1, "out of order");
        assert_eq!(problems("AA", &[1, 1, 1, 2]), 1, "more copies than tries");
        assert_eq!(problems("AR", &[1, 2]), 1, "a refused put that arrived");
        assert_eq!(problems("A", &[1, 7]), 1, "a put never emitted");
    }
}
