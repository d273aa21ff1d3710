//! The soak's smoke run within the test command: `soak --smoke` (what
//! `scripts/soak --smoke` runs, here in the test build) against the server
//! on each runtime: 150 clients over WebSocket, long-polling and upgraded
//! polling for 12 s, every tick and relayed say checked, none lost,
//! duplicated or out of order, no disconnect.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far more than a smoke run takes (about 15 s; connecting and settling
/// are each bounded at 30 s by the binary itself).
const LIMIT: Duration = Duration::from_secs(240);

fn smoke(runtime: &str) {
    let out = std::env::temp_dir().join(format!("soak-smoke-{runtime}-{}.md", std::process::id()));
    let mut soak = Command::new(env!("CARGO_BIN_EXE_soak"))
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
            panic!("the soak smoke run on {runtime} took over {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert!(
        status.success(),
        "the soak smoke run on {runtime} failed:\n{report}"
    );
    assert!(report.contains("**Passed.**"), "{report}");
}

#[test]
fn smoke_on_tokio() {
    smoke("tokio");
}

#[test]
fn smoke_on_smol() {
    smoke("smol");
}
