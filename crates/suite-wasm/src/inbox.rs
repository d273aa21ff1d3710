//! What a socket received and what happened to it, in order, for a
//! scenario to wait on (each wait bounded by [`WAIT`]); and the harness's
//! steps.

use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::Value;
use socketio::client::{Browser, ClientSocket, ConnectError, DisconnectReason};
use socketio::{Payload, Runtime};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The longest any single wait of a scenario may take.
pub const WAIT: Duration = Duration::from_secs(10);

#[wasm_bindgen]
extern "C" {
    /// `interop/wasm-client.mjs`'s hand: cuts or restores the network,
    /// stops or starts the server, emits from a client of its own.
    #[wasm_bindgen(js_name = harness)]
    fn harness_step(step: &str) -> js_sys::Promise;
}

/// Asks the harness for `step`; its answer as text.
pub async fn harness(step: &str) -> Result<String, String> {
    let answer = JsFuture::from(harness_step(step))
        .await
        .map_err(|e| format!("harness step {step} failed: {e:?}"))?;
    Ok(answer.as_string().unwrap_or_default())
}

/// `future`'s output, or an error naming `what` once [`WAIT`] passes.
pub async fn within<F: std::future::Future>(what: &str, future: F) -> Result<F::Output, String> {
    let deadline = Browser.sleep_until(web_time::Instant::now() + WAIT);
    let future = std::pin::pin!(future);
    match futures_util::future::select(future, deadline).await {
        futures_util::future::Either::Left((output, _)) => Ok(output),
        futures_util::future::Either::Right(_) => Err(format!("timed out waiting for {what}")),
    }
}

/// Fails with `what` when `got` is not `want`.
pub fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// An error's text, for `map_err`.
pub fn text<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |error| format!("{what}: {error}")
}

pub enum Seen {
    Event(String, Payload),
    Connect { recovered: bool, id: String },
    ConnectError(ConnectError),
    Disconnect(DisconnectReason),
}

pub struct Inbox {
    receiver: mpsc::UnboundedReceiver<Seen>,
    /// Seen but not yet asked for.
    stash: Vec<Seen>,
}

impl Inbox {
    /// Listens to every event and lifecycle change of `socket`.
    pub fn attach(socket: &ClientSocket) -> Inbox {
        let (sender, receiver) = mpsc::unbounded();
        let events = sender.clone();
        socket.on_any(move |_, event, payload| {
            let _ = events.unbounded_send(Seen::Event(event, payload));
            async {}
        });
        let connects = sender.clone();
        socket.on_connect(move |socket| {
            let _ = connects.unbounded_send(Seen::Connect {
                recovered: socket.recovered(),
                id: socket.id().unwrap_or_default(),
            });
            async {}
        });
        let errors = sender.clone();
        socket.on_connect_error(move |_, error| {
            let _ = errors.unbounded_send(Seen::ConnectError(error));
            async {}
        });
        socket.on_disconnect(move |_, reason| {
            let _ = sender.unbounded_send(Seen::Disconnect(reason));
            async {}
        });
        Inbox {
            receiver,
            stash: Vec::new(),
        }
    }

    async fn next_matching<T>(
        &mut self,
        what: &str,
        pick: impl Fn(&Seen) -> Option<T>,
    ) -> Result<T, String> {
        if let Some(i) = self.stash.iter().position(|seen| pick(seen).is_some()) {
            let seen = self.stash.remove(i);
            return pick(&seen).ok_or_else(|| String::from("unreachable"));
        }
        let receiver = &mut self.receiver;
        let stash = &mut self.stash;
        let waiting = async {
            loop {
                let seen = receiver.next().await?;
                if let Some(found) = pick(&seen) {
                    return Some(found);
                }
                stash.push(seen);
            }
        };
        match within(what, waiting).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(format!("the socket went away before {what}")),
            Err(error) => Err(format!(
                "{error}; seen meanwhile: {:?}",
                self.stashed_events()
            )),
        }
    }

    /// The next event named `name`, as its JSON arguments.
    pub async fn event(&mut self, name: &str) -> Result<Value, String> {
        let payload = self
            .next_matching(&format!("event {name}"), |seen| match seen {
                Seen::Event(event, payload) if event == name => Some(payload.clone()),
                _ => None,
            })
            .await?;
        payload.parse().map_err(text("arguments as JSON"))
    }

    /// The next connect: whether it recovered the session, and the id.
    pub async fn connected(&mut self) -> Result<(bool, String), String> {
        self.next_matching("connect", |seen| match seen {
            Seen::Connect { recovered, id } => Some((*recovered, id.clone())),
            _ => None,
        })
        .await
    }

    /// The next disconnect reason.
    pub async fn disconnected(&mut self) -> Result<DisconnectReason, String> {
        self.next_matching("disconnect", |seen| match seen {
            Seen::Disconnect(reason) => Some(reason.clone()),
            _ => None,
        })
        .await
    }

    /// The next connect error.
    pub async fn connect_error(&mut self) -> Result<ConnectError, String> {
        self.next_matching("connect_error", |seen| match seen {
            Seen::ConnectError(error) => Some(error.clone()),
            _ => None,
        })
        .await
    }

    /// Names of the events seen so far and not asked for.
    pub fn stashed_events(&self) -> Vec<String> {
        self.stash
            .iter()
            .filter_map(|seen| match seen {
                Seen::Event(name, _) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}
