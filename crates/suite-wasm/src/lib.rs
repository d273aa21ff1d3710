//! The Rust client's scenarios in a real browser. Built for
//! `wasm32-unknown-unknown` and bound with `wasm-bindgen --target web`,
//! this module is loaded by `interop/wasm-client.mjs` in headless
//! Chromium, which calls [`run`] once per scenario and transport, against
//! Node's server (`interop/server.mjs`) and ours (`mirror-server`, the same
//! behaviour): `crates/suite/tests/browser_client.rs` drives it all.
//!
//! The scenarios mirror the native ones (`crates/suite/tests/client_scenarios`)
//! over the browser's own `fetch` and `WebSocket`. The page lives on the
//! origin of a proxy in front of the server, so that the client connects
//! to a relative URL (`/`) and the harness can cut its network
//! (`harness("cut")`), hold new connections unanswered (`harness("hold")`)
//! or restart the server (`harness("stop")`, `harness("start")`) at the
//! scenario's request.
//!
//! Nothing is built on native targets.

#![cfg(target_arch = "wasm32")]

mod inbox;
mod scenarios;

use socketio::client::Transports;
use wasm_bindgen::prelude::*;

/// Runs scenario `scenario` (`events`, `namespaces`, `acks`, `recovery`,
/// `restart`, `silent`, `cross-origin`, `awaiting`, `dynamic-auth`, `sent-away`, `backpressure`) over `transport` (`polling`, `websocket`,
/// `upgrade`) with `parser` (`json` or `msgpack`, as the server speaks);
/// resolves to a short report, or rejects with what went wrong.
#[wasm_bindgen]
pub async fn run(scenario: String, transport: String, parser: String) -> Result<String, String> {
    scenarios::use_msgpack(match parser.as_str() {
        "json" => false,
        "msgpack" => true,
        other => return Err(format!("unknown parser {other}")),
    });
    let transports = match transport.as_str() {
        "polling" => Transports::POLLING,
        "websocket" => Transports::WEBSOCKET,
        "upgrade" => Transports::ALL,
        other => return Err(format!("unknown transport {other}")),
    };
    let t = &transport;
    match scenario.as_str() {
        "events" => scenarios::events(transports, t).await,
        "namespaces" => scenarios::namespaces(transports, t).await,
        "acks" => scenarios::acks(transports, t).await,
        "recovery" => scenarios::recovery(transports, t).await,
        "restart" => scenarios::restart(transports, t).await,
        "silent" => scenarios::silent(transports, t).await,
        "cross-origin" => scenarios::cross_origin(transports, t).await,
        "awaiting" => scenarios::awaiting(transports, t).await,
        "dynamic-auth" => scenarios::dynamic_auth(transports, t).await,
        "sent-away" => scenarios::sent_away(transports, t).await,
        "backpressure" => scenarios::backpressure(transports, t).await,
        other => Err(format!("unknown scenario {other}")),
    }
    .map_err(|error| format!("{scenario} over {transport}: {error}"))
}
