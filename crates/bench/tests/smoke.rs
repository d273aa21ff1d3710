//! The harness works against every server: `bench run --smoke` starts our
//! server on both runtimes, socketioxide and Node's socket.io in turn, runs
//! every scenario at tiny sizes, checks every reply, and writes a report
//! with a row per server and scenario it runs. (It measures nothing worth reading: debug builds,
//! unpinned, fractions of a second.)

use std::process::Command;

#[test]
fn every_scenario_runs_against_every_server() {
    let out = std::env::temp_dir().join(format!("bench-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--smoke", "--rounds", "1", "--no-pin", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("bench runs");
    assert!(status.success(), "bench run --smoke failed: {status}");
    let report = std::fs::read_to_string(out.join("report.md")).expect("a report");
    let scenarios = [
        "echo",
        "ack",
        "broadcast",
        "ramp",
        "polling",
        "chat-32",
        "chat-32-deflate",
        "chat-1k",
        "chat-1k-deflate",
        "idle",
        "idle-deflate",
        "idle-deflate-lean",
    ];
    for scenario in scenarios {
        assert!(
            report.contains(&format!("### {scenario} ")),
            "no {scenario} section"
        );
    }
    // socketioxide has no permessage-deflate: no row in the four deflate
    // scenarios.
    for (server, expected) in [
        ("ours (tokio)", 12),
        ("ours (smol)", 12),
        ("socketioxide", 8),
        ("node socket.io", 12),
    ] {
        let rows = report
            .lines()
            .filter(|line| line.starts_with(&format!("| {server} |")))
            .count();
        assert_eq!(rows, expected, "{server}'s rows");
    }
    let raw = std::fs::read_to_string(out.join("results.json")).expect("raw figures");
    let raw: serde_json::Value = serde_json::from_str(&raw).expect("JSON");
    for entry in raw.as_array().expect("an array") {
        for outcome in entry["outcomes"].as_array().expect("outcomes") {
            assert!(
                outcome["count"].as_u64().unwrap() > 0,
                "nothing counted: {entry}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(out);
}
