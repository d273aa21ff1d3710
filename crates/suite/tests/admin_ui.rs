//! The Admin UI instrumentation (`crates/admin-ui`) against Node's: the
//! official `@socket.io/admin-ui` (npm, pinned) instruments Node's server
//! in `interop/admin-server.mjs`, ours instruments ours with the same app
//! (`suite::admin`), and `interop/admin-ui.mjs` drives one scenario with
//! the official client against each and reports, normalized, every notice
//! its admin clients got. The two reports must hold the same notices.
//!
//! In a cluster (a real `redis-server`, two Rust servers and Node's, each
//! instrumented), one admin client sees every server's stats and every
//! socket, and its commands reach sockets on every server
//! (`interop/admin-ui-cluster.mjs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory};
use serde_json::Value;
use suite::admin::{start_admin_server, AdminSetup};
use suite::node::{run_script, script_output_env, NodeServer};
use suite::redis::RedisServer;
use suite::TestRuntime;

/// The environment of a run: `SIO_PARSER=msgpack` for msgpack.
fn parser_env(msgpack: bool) -> Vec<(&'static str, &'static str)> {
    if msgpack {
        vec![("SIO_PARSER", "msgpack")]
    } else {
        Vec::new()
    }
}

/// The scenario's report against a server.
async fn report(url: &str, flag: Option<&str>, msgpack: bool) -> Value {
    let mut args = vec![url.to_owned()];
    args.extend(flag.map(str::to_owned));
    let output = script_output_env("admin-ui.mjs", &args, &parser_env(msgpack))
        .await
        .unwrap_or_else(|why| panic!("the admin scenario failed against {url}: {why}"));
    serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("not a report ({e}): {output}"))
}

/// The report of Node's instrumented server, started with `flag`.
async fn node_report(flag: Option<&str>, msgpack: bool) -> Value {
    let mut args = vec!["0".to_owned()];
    args.extend(flag.map(str::to_owned));
    let node = NodeServer::script_env("admin-server.mjs", &args, &parser_env(msgpack)).await;
    let report = report(&node.url(), flag, msgpack).await;
    node.kill();
    report
}

/// Every notice but the stats, with how many times it came.
fn notice_counts(report: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for notice in report["notices"].as_array().expect("notices") {
        *counts.entry(notice.to_string()).or_default() += 1;
    }
    counts
}

/// The position of each notice, for the order checks.
fn position(report: &Value, test: impl Fn(&Value) -> bool) -> Vec<usize> {
    report["notices"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, notice)| test(notice))
        .map(|(at, _)| at)
        .collect()
}

/// What a notice says of a socket: the role its id was normalized to.
fn about(notice: &Value, role: &str) -> bool {
    match notice[0].as_str() {
        Some("socket_connected") => notice[1]["id"] == role,
        Some("socket_updated") => notice[1]["id"] == role,
        Some("event_received" | "event_sent" | "socket_disconnected") => notice[2] == role,
        _ => false,
    }
}

/// For each client, its `socket_connected` comes before anything else said
/// of it (but the data copies Node reports first), and its
/// `socket_disconnected` after: what the UI's store needs.
fn check_order(report: &Value, server: &str) {
    for role in ["<alice>", "<bob>", "<admin2>"] {
        let all = position(report, |n| about(n, role));
        let connected = position(report, |n| n[0] == "socket_connected" && about(n, role));
        let disconnected = position(report, |n| n[0] == "socket_disconnected" && about(n, role));
        let data_copies = position(report, |n| {
            n[0] == "socket_updated" && about(n, role) && n[1].get("data").is_some()
        });
        let [connected] = connected[..] else {
            panic!("{server}: {role} connected {} times", connected.len());
        };
        for at in &all {
            assert!(
                *at >= connected || data_copies.contains(at),
                "{server}: a notice of {role} came before its socket_connected"
            );
        }
        if let [disconnected] = disconnected[..] {
            assert_eq!(
                all.last(),
                Some(&disconnected),
                "{server}: {role} after it left"
            );
        }
    }
}

fn compare(node: &Value, ours: &Value, what: &str) {
    check_order(node, "node");
    check_order(ours, what);
    let (node_notices, our_notices) = (notice_counts(node), notice_counts(ours));
    let missing: Vec<_> = node_notices
        .iter()
        .filter(|(n, count)| our_notices.get(*n) != Some(count))
        .collect();
    let extra: Vec<_> = our_notices
        .iter()
        .filter(|(n, count)| node_notices.get(*n) != Some(count))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: the notices differ from Node's.\nonly Node's: {missing:#?}\nonly ours: {extra:#?}"
    );
    // The stats: the same fields and namespaces, the same sockets left at
    // the end, and traffic counted.
    assert_eq!(
        ours["stats"]["keys"], node["stats"]["keys"],
        "{what}: stats fields"
    );
    assert_eq!(
        ours["stats"]["namespaces"], node["stats"]["namespaces"],
        "{what}: namespaces"
    );
    assert_eq!(ours["final"]["keys"], node["final"]["keys"]);
    assert_eq!(
        ours["final"]["namespaces"], node["final"]["namespaces"],
        "{what}: sockets per namespace at the end"
    );
    assert!(
        ours["final"]["saw"]
            .as_array()
            .is_some_and(|saw| saw.len() >= 3),
        "{what}: the last stats counted too little traffic: {}",
        ours["final"]
    );
}

async fn admin_notices_as_with_node<R: TestRuntime>(runtime: R) {
    let node = node_report(None, false).await;
    let (addr, _io) = start_admin_server(runtime, AdminSetup::default()).await;
    let ours = report(&format!("http://{addr}/"), None, false).await;
    compare(&node, &ours, "development mode");
}

/// The same over socket.io-msgpack-parser, which the UI offers: Node's
/// dates come as msgpack timestamps there, ours as the ISO strings JSON
/// has (the UI reads both); everything else is the same.
async fn admin_notices_over_msgpack_as_with_node<R: TestRuntime>(runtime: R) {
    let node = node_report(None, true).await;
    let setup = AdminSetup {
        msgpack: true,
        ..AdminSetup::default()
    };
    let (addr, _io) = start_admin_server(runtime, setup).await;
    let ours = report(&format!("http://{addr}/"), None, true).await;
    compare(&node, &ours, "development mode over msgpack");
}

async fn readonly_admin_as_with_node<R: TestRuntime>(runtime: R) {
    let node = node_report(Some("--readonly"), false).await;
    let setup = AdminSetup {
        readonly: true,
        ..AdminSetup::default()
    };
    let (addr, _io) = start_admin_server(runtime, setup).await;
    let ours = report(&format!("http://{addr}/"), Some("--readonly"), false).await;
    compare(&node, &ours, "read-only mode");
}

async fn production_admin_as_with_node<R: TestRuntime>(runtime: R) {
    let node = node_report(Some("--production"), false).await;
    let setup = AdminSetup {
        production: true,
        ..AdminSetup::default()
    };
    let (addr, _io) = start_admin_server(runtime, setup).await;
    let ours = report(&format!("http://{addr}/"), Some("--production"), false).await;
    // Production mode: no notice but the session, the config and the stats.
    let kinds: Vec<_> = ours["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n[0].clone())
        .collect();
    assert_eq!(kinds, ["session", "config"], "production mode says little");
    assert_eq!(notice_counts(&node), notice_counts(&ours));
    assert_eq!(ours["final"]["namespaces"], node["final"]["namespaces"]);
}

async fn one_admin_sees_and_drives_a_mixed_cluster<R: TestRuntime>(runtime: R) {
    let redis = RedisServer::start().await;
    let mut args = Vec::new();
    let mut servers = Vec::new();
    for name in ["rust-a", "rust-b"] {
        let factory = RedisAdapterFactory::new(redis.url(), RedisAdapterConfig::default())
            .expect("a valid redis url");
        let setup = AdminSetup {
            adapter: Some(Arc::new(factory)),
            server_id: Some(name.to_owned()),
            ..AdminSetup::default()
        };
        let (addr, io) = start_admin_server(runtime, setup).await;
        args.push(format!("{name}=http://{addr}/"));
        servers.push(io);
    }
    let node = NodeServer::script(
        "admin-server.mjs",
        &[
            "0".into(),
            "--redis".into(),
            redis.url(),
            "--server-id".into(),
            "node".into(),
        ],
    )
    .await;
    args.push(format!("node={}", node.url()));
    // The admin logs in to each kind of server in turn.
    run_script("admin-ui-cluster.mjs", &args, "admin on a Rust server")
        .await
        .unwrap();
    args.rotate_right(1);
    run_script("admin-ui-cluster.mjs", &args, "admin on Node's server")
        .await
        .unwrap();
    node.kill();
}

suite::on_each_runtime!(
    one_admin_sees_and_drives_a_mixed_cluster,
    admin_notices_as_with_node,
    admin_notices_over_msgpack_as_with_node,
    readonly_admin_as_with_node,
    production_admin_as_with_node,
);

/// An admin client that sends commands Node's UI never sends (unknown
/// namespaces, arguments of the wrong types or missing) changes nothing,
/// creates no namespace, and the server goes on serving it and everyone.
async fn malformed_admin_commands_change_nothing<R: TestRuntime>(runtime: R) {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;
    let (addr, io) = start_admin_server(runtime, AdminSetup::default()).await;
    let auth = r#"{"username":"admin","password":"changeit"}"#;
    let mut admin = suite::raw::socketio(runtime, addr, "/admin", Some(auth)).await;
    let mut user = suite::raw::socketio(runtime, addr, "/", None).await;
    for command in [
        r#"42/admin,["emit","/nope",null,"x",1]"#,
        r#"42/admin,["emit"]"#,
        r#"42/admin,["emit","/",{"a":1},7]"#,
        r#"42/admin,["join",1,2,3]"#,
        r#"42/admin,["join","/nope","room"]"#,
        r#"42/admin,["leave","/",{"a":1}]"#,
        r#"42/admin,["_disconnect"]"#,
        r#"42/admin,["_disconnect","/nope",true]"#,
        r#"42/admin,["_disconnect","/","yes","no-such-room"]"#,
    ] {
        admin.send(Message::text(command)).await.unwrap();
    }
    // The admin is still served: its next stats come.
    suite::within("the admin's stats", async {
        loop {
            let frame = admin.next().await.unwrap().unwrap();
            if frame
                .to_text()
                .unwrap()
                .starts_with(r#"42/admin,["server_stats""#)
            {
                return;
            }
        }
    })
    .await;
    let names: Vec<String> = io
        .namespaces()
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "/nope"), "{names:?}");
    // The user was neither disconnected nor sent anything.
    admin
        .send(Message::text(r#"42/admin,["emit","/",null,"ping"]"#))
        .await
        .unwrap();
    let got = suite::within("the admin's emit", user.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.to_text().unwrap(), r#"42["ping"]"#);
}

suite::on_each_runtime!(malformed_admin_commands_change_nothing);
