//! The chat page's client in Rust: what `examples/chat/index.html` does
//! with the official JavaScript client, done with this workspace's client
//! compiled to WebAssembly, over the browser's own `fetch` and
//! `WebSocket`. The chat example serves it at <http://127.0.0.1:3000/wasm/>
//! next to the JavaScript page, and both talk in the same chat.
//!
//! Build it with `scripts/build-wasm chat-wasm target/wasm/pkg/chat-wasm`
//! (`scripts/demo` does). The page (`examples/chat/wasm.html`) imports the
//! bound module and calls [`start`].
//!
//! Socket.IO listeners run on the client's tasks and must be `Send`, as on
//! every runtime; the page's DOM is not. So listeners only describe what
//! to show ([`Show`]) and one task on the page's thread draws it.

#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde::Deserialize;
use socketio::client::{self, Browser, ClientOptions, ClientSocket, ManagerEvent};
use socketio::{Data, Runtime};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Document, HtmlElement, HtmlInputElement};

/// What the page shows next.
enum Show {
    Log(String),
    Say { name: String, text: String },
    Count(u64),
    Typing { name: String, typing: bool },
    Reconnected,
}

#[derive(Deserialize)]
struct Login {
    #[serde(rename = "numUsers")]
    num_users: u64,
}

#[derive(Deserialize)]
struct Message {
    username: String,
    message: String,
}

#[derive(Deserialize)]
struct Presence {
    username: String,
    #[serde(rename = "numUsers")]
    num_users: u64,
}

#[derive(Deserialize)]
struct Typist {
    username: String,
}

/// Connects to the page's server and wires the page up.
#[wasm_bindgen]
pub fn start() -> Result<(), JsValue> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?;
    // Relative: the page's own server.
    let socket = client::io(Browser, "/", ClientOptions::default())
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (show, shown) = mpsc::unbounded();
    listen(&socket, show);
    let username: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
    wasm_bindgen_futures::spawn_local(draw(
        document.clone(),
        shown,
        socket.clone(),
        username.clone(),
    ));
    wire_page(&document, &socket, username)?;
    let connecting = socket.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(error) = connecting.connect().await {
            web_sys::console::error_1(&format!("chat: {error}").into());
        }
    });
    Ok(())
}

/// The Socket.IO listeners: each says what to show.
fn listen(socket: &ClientSocket, show: mpsc::UnboundedSender<Show>) {
    let to = show.clone();
    socket.on("login", move |_, Data(login): Data<Login>, _| {
        let _ = to.unbounded_send(Show::Log(String::from("Welcome to the chat")));
        let _ = to.unbounded_send(Show::Count(login.num_users));
        async {}
    });
    let to = show.clone();
    socket.on("new message", move |_, Data(m): Data<Message>, _| {
        let _ = to.unbounded_send(Show::Typing {
            name: m.username.clone(),
            typing: false,
        });
        let _ = to.unbounded_send(Show::Say {
            name: m.username,
            text: m.message,
        });
        async {}
    });
    let to = show.clone();
    socket.on("user joined", move |_, Data(p): Data<Presence>, _| {
        let _ = to.unbounded_send(Show::Log(format!("{} joined", p.username)));
        let _ = to.unbounded_send(Show::Count(p.num_users));
        async {}
    });
    let to = show.clone();
    socket.on("user left", move |_, Data(p): Data<Presence>, _| {
        let _ = to.unbounded_send(Show::Typing {
            name: p.username.clone(),
            typing: false,
        });
        let _ = to.unbounded_send(Show::Log(format!("{} left", p.username)));
        let _ = to.unbounded_send(Show::Count(p.num_users));
        async {}
    });
    for (event, typing) in [("typing", true), ("stop typing", false)] {
        let to = show.clone();
        socket.on(event, move |_, Data(t): Data<Typist>, _| {
            let _ = to.unbounded_send(Show::Typing {
                name: t.username,
                typing,
            });
            async {}
        });
    }
    let to = show.clone();
    socket.on_disconnect(move |_, _| {
        let _ = to.unbounded_send(Show::Log(String::from("you have been disconnected")));
        async {}
    });
    socket.manager().on_event(move |event| {
        if let ManagerEvent::Reconnect(_) = event {
            let _ = show.unbounded_send(Show::Reconnected);
        }
    });
}

/// Draws what the listeners asked for, on the page's thread.
async fn draw(
    document: Document,
    mut shown: mpsc::UnboundedReceiver<Show>,
    socket: ClientSocket,
    username: Rc<std::cell::RefCell<Option<String>>>,
) {
    let mut typists = BTreeSet::new();
    while let Some(show) = shown.next().await {
        match show {
            Show::Log(text) => log(&document, &text),
            Show::Say { name, text } => say(&document, &name, &text),
            Show::Count(n) => {
                let text = if n == 1 {
                    String::from("1 participant")
                } else {
                    format!("{n} participants")
                };
                set_text(&document, "count", &text);
            }
            Show::Typing { name, typing } => {
                if typing {
                    typists.insert(name);
                } else {
                    typists.remove(&name);
                }
                let names: Vec<&str> = typists.iter().map(String::as_str).collect();
                let text = match names.len() {
                    0 => String::new(),
                    1 => format!("{} is typing…", names[0]),
                    _ => format!("{} are typing…", names.join(", ")),
                };
                set_text(&document, "typing", &text);
            }
            Show::Reconnected => {
                log(&document, "you have been reconnected");
                if let Some(name) = username.borrow().as_deref() {
                    let _ = socket.emit("add user", name);
                }
            }
        }
    }
}

/// The page's inputs: the nickname, the message box, typing.
fn wire_page(
    document: &Document,
    socket: &ClientSocket,
    username: Rc<std::cell::RefCell<Option<String>>>,
) -> Result<(), JsValue> {
    let nickname = input(document, "nickname")?;
    let message = input(document, "message")?;

    let (page, chatter, box_) = (document.clone(), socket.clone(), message.clone());
    let name = username.clone();
    on(&nickname, "keydown", move |event| {
        let enter = event
            .dyn_ref::<web_sys::KeyboardEvent>()
            .is_some_and(|key| key.key() == "Enter");
        let Some(field) = event
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        let chosen = field.value().trim().to_owned();
        if !enter || chosen.is_empty() {
            return;
        }
        show_screen(&page, "login", "none");
        show_screen(&page, "chat", "flex");
        let _ = box_.focus();
        let _ = chatter.emit("add user", &chosen);
        *name.borrow_mut() = Some(chosen);
    })?;

    let compose = document.get_element_by_id("compose").ok_or("no #compose")?;
    let (page, chatter, box_) = (document.clone(), socket.clone(), message.clone());
    let name = username;
    on(&compose, "submit", move |event| {
        event.prevent_default();
        let text = box_.value().trim().to_owned();
        if text.is_empty() {
            return;
        }
        box_.set_value("");
        if let Some(me) = name.borrow().as_deref() {
            say(&page, me, &text);
        }
        let _ = chatter.emit("new message", &text);
        let _ = chatter.emit("stop typing", &());
    })?;

    // "stop typing" 800 ms after the last keystroke: each keystroke starts
    // a wait, and only the latest one's ends it.
    let keystrokes = Rc::new(Cell::new(0u64));
    let chatter = socket.clone();
    on(&message, "input", move |_| {
        let _ = chatter.emit("typing", &());
        let stroke = keystrokes.get() + 1;
        keystrokes.set(stroke);
        let (latest, chatter) = (keystrokes.clone(), chatter.clone());
        wasm_bindgen_futures::spawn_local(async move {
            Browser
                .sleep_until(web_time::Instant::now() + Duration::from_millis(800))
                .await;
            if latest.get() == stroke {
                let _ = chatter.emit("stop typing", &());
            }
        });
    })?;
    Ok(())
}

fn input(document: &Document, id: &str) -> Result<HtmlInputElement, JsValue> {
    document
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<HtmlInputElement>().ok())
        .ok_or_else(|| JsValue::from_str(&format!("no input #{id}")))
}

/// Adds a listener for the page's lifetime.
fn on(
    target: &web_sys::EventTarget,
    event: &str,
    listener: impl FnMut(web_sys::Event) + 'static,
) -> Result<(), JsValue> {
    let listener = Closure::<dyn FnMut(web_sys::Event)>::new(listener);
    target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref())?;
    // The page keeps it until it closes.
    listener.forget();
    Ok(())
}

fn show_screen(document: &Document, id: &str, display: &str) {
    if let Some(element) = document
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<HtmlElement>().ok())
    {
        let _ = element.style().set_property("display", display);
    }
}

fn set_text(document: &Document, id: &str, text: &str) {
    if let Some(element) = document.get_element_by_id(id) {
        element.set_text_content(Some(text));
    }
}

/// Appends a line to the messages: `who` in bold (if any), then `text`.
fn add_line(document: &Document, who: Option<&str>, text: &str, class: Option<&str>) {
    let (Some(list), Ok(line)) = (
        document.get_element_by_id("messages"),
        document.create_element("li"),
    ) else {
        return;
    };
    if let Some(class) = class {
        line.set_class_name(class);
    }
    if let (Some(who), Ok(name)) = (who, document.create_element("span")) {
        name.set_class_name("name");
        name.set_text_content(Some(who));
        let _ = line.append_child(&name);
    }
    let _ = line.append_child(&document.create_text_node(text));
    let _ = list.append_child(&line);
    line.scroll_into_view();
}

fn log(document: &Document, text: &str) {
    add_line(document, None, text, Some("log"));
}

fn say(document: &Document, name: &str, text: &str) {
    add_line(document, Some(name), text, None);
}
