//! The soaks' smoke runs within the test command: `soak --smoke` and
//! `soak kill --smoke` (what `scripts/soak` runs with `--smoke`, here in
//! the test build), with the servers on each runtime.
//!
//! - Load: 150 clients over WebSocket, long-polling and upgraded polling
//!   for 12 s, every tick and relayed say checked: none lost, duplicated
//!   or out of order, no disconnect.
//! - Kills: 60 clients behind a balancer, their server of a two-server
//!   Redis Streams cluster killed twice in the middle of the ticks: with
//!   recovery every tick arrives once and in order; without, only ticks
//!   broadcast while a client had no server are missing.
//! - Broker faults: 60 clients on two servers of a Redis cluster (classic
//!   and Streams adapters); Redis stopped for 3 s, restarted, slowed down:
//!   local traffic goes on every second, cross-server ticks resume, no
//!   server exits or panics, memory stays bounded.
//! - Network faults: 12 Rust and 12 official Node clients emitting with
//!   acks and retries through a relay that delays, stalls and cuts their
//!   connections at random (seed 1): what the server got is what Node's
//!   retries promise.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far more than a smoke run takes (15 to 40 s; each step is bounded by
/// the binary itself).
const LIMIT: Duration = Duration::from_secs(300);

fn smoke(args: &[&str], runtime: &str) {
    let out = std::env::temp_dir().join(format!(
        "soak-smoke-{}-{runtime}-{}.md",
        args.join("-"),
        std::process::id()
    ));
    let mut soak = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .args(["--smoke", "--runtime", runtime, "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .spawn()
        .expect("the soak binary starts");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = soak.try_wait().expect("the soak runs") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = soak.kill();
            let _ = soak.wait();
            panic!("soak {args:?} --smoke on {runtime} took over {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert!(
        status.success(),
        "soak {args:?} --smoke on {runtime} failed:\n{report}"
    );
    assert!(report.contains("**Passed.**"), "{report}");
    assert!(!report.contains("**Failed"), "{report}");
}

#[test]
fn load_on_tokio() {
    smoke(&["load"], "tokio");
}

#[test]
fn load_on_smol() {
    smoke(&["load"], "smol");
}

#[test]
fn kills_on_tokio() {
    smoke(&["kill"], "tokio");
}

#[test]
fn kills_on_smol() {
    smoke(&["kill"], "smol");
}

#[test]
fn broker_faults_on_tokio() {
    smoke(&["broker"], "tokio");
}

#[test]
fn broker_faults_on_smol() {
    smoke(&["broker"], "smol");
}

#[test]
fn network_faults_on_tokio() {
    smoke(&["network"], "tokio");
}

#[test]
fn network_faults_on_smol() {
    smoke(&["network"], "smol");
}
