//! The client in the browser (`wasm32-unknown-unknown`): what native IO
//! does for the driver, done by the browser. Tasks run on the page's event
//! loop (`spawn_local`), timers are `setTimeout`, long-polling goes over
//! `fetch`, and WebSockets are the browser's own, with binary messages as
//! `ArrayBuffer`s.
//!
//! The browser runs one thread here, and its objects (`JsValue`s) may not
//! leave it. The driver's futures must still be `Send`, as on every
//! runtime: what holds a browser object is wrapped in a [`SendWrapper`],
//! which checks that it stays on the thread that made it, and it does.
//!
//! The browser gives no write readiness on a WebSocket: frames are handed
//! to it as they come (it buffers them, as for Node's client), so a link
//! is never full. Reading is bounded: a link that holds more than
//! [`MAX_MESSAGE`] bytes of unread frames is closed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use engineio_proto::client::{HttpMethod, Query};
use engineio_proto::{Frame, Str, WsId};
use send_wrapper::SendWrapper;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_time::Instant;

use super::driver::Shared;
use super::options::Endpoint;
use crate::links::{Link, LinkRead, LinkWrite};
use crate::runtime::{BoxFuture, ClientRuntime, Runtime, Sleep};

/// The largest HTTP response body the client accepts, and the most unread
/// WebSocket data a link holds. Node's server sends at most
/// `maxHttpBufferSize` (1 MB) per message by default; polling responses
/// may batch several.
pub(crate) const MAX_MESSAGE: usize = 16 << 20;

#[wasm_bindgen]
extern "C" {
    // Globals of both windows and workers.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_request(request: &web_sys::Request) -> js_sys::Promise;
}

/// The browser as the client's runtime: tasks on the page's event loop,
/// timers from `setTimeout`, HTTP over `fetch`, the browser's WebSocket.
/// Works in a window and in a worker.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use socketio::client::{self, Browser, ClientOptions};
///
/// // A relative URL is resolved against the page's address.
/// let socket = client::connect(Browser, "/chat", ClientOptions::default()).await?;
/// socket.emit("message", "hello from Rust in the browser")?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser;

impl Runtime for Browser {
    fn spawn(&self, task: BoxFuture) {
        wasm_bindgen_futures::spawn_local(task);
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(SendWrapper::new(Timer::at(deadline)))
    }
}

impl ClientRuntime for Browser {}

/// How a [`ClientRuntime`] hands the client its IO in the browser. Only
/// [`Browser`] implements it.
pub trait Platform {
    /// The IO the driver uses.
    #[doc(hidden)]
    fn client_io(&self) -> Arc<dyn ClientIo>;
}

impl Platform for Browser {
    fn client_io(&self) -> Arc<dyn ClientIo> {
        Arc::new(Browser)
    }
}

/// The runtime as the client's driver uses it (natively it also opens TCP
/// connections; here the browser opens its own).
#[doc(hidden)]
pub trait ClientIo: Send + Sync + 'static {
    /// Runs `task` on the page's event loop.
    fn spawn(&self, task: BoxFuture);
    /// Completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

impl ClientIo for Browser {
    fn spawn(&self, task: BoxFuture) {
        Runtime::spawn(self, task)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Runtime::sleep_until(self, deadline)
    }
}

/// The page's (or worker's) address, which relative URLs resolve against.
pub(crate) fn location() -> Option<String> {
    let location = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location")).ok()?;
    js_sys::Reflect::get(&location, &JsValue::from_str("href"))
        .ok()?
        .as_string()
}

/// A `setTimeout` as a future; cleared when dropped, so a timer the driver
/// replaced costs nothing after.
struct Timer {
    state: Rc<TimerState>,
    handle: JsValue,
    /// Called by the browser; kept alive until the timer is cleared.
    _callback: Closure<dyn FnMut()>,
}

#[derive(Default)]
struct TimerState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Timer {
    fn at(deadline: Instant) -> Timer {
        let state = Rc::new(TimerState::default());
        let fire = state.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            fire.fired.set(true);
            if let Some(waker) = fire.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        // Rounded up, so that it never fires before the deadline; browsers
        // fire at once past 2^31 - 1 ms, so longer waits are cut there (the
        // driver arms a new timer when this one fires early).
        let wait = deadline.saturating_duration_since(Instant::now());
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let handle = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Timer {
            state,
            handle,
            _callback: callback,
        }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.get() {
            return Poll::Ready(());
        }
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}

/// The browser pools its own HTTP connections: nothing to keep here.
#[derive(Default)]
pub(crate) struct HttpPool {
    _pooled_by_the_browser: (),
}

impl HttpPool {
    pub(crate) fn clear(&self) {}
}

/// Makes one Engine.IO HTTP request with `fetch`; returns the status and
/// the body. Dropping the future aborts the request.
pub(crate) fn http_request(
    _io: &dyn ClientIo,
    _pool: &HttpPool,
    endpoint: &Endpoint,
    method: HttpMethod,
    query: Query,
    body: Bytes,
) -> impl Future<Output = io::Result<(u16, Bytes)>> + Send + 'static {
    let url = endpoint.url(false, &query);
    let credentials = if endpoint.with_credentials {
        web_sys::RequestCredentials::Include
    } else {
        web_sys::RequestCredentials::SameOrigin
    };
    let headers: Vec<(String, String)> = endpoint
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    SendWrapper::new(async move {
        fetch(url, method, headers, credentials, body)
            .await
            .map_err(|error| io::Error::other(describe(&error)))
    })
}

async fn fetch(
    url: String,
    method: HttpMethod,
    extra_headers: Vec<(String, String)>,
    credentials: web_sys::RequestCredentials,
    body: Bytes,
) -> Result<(u16, Bytes), JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_credentials(credentials);
    let headers = web_sys::Headers::new()?;
    for (name, value) in &extra_headers {
        // A header the browser forbids scripts to set is dropped by it.
        let _ = headers.append(name, value);
    }
    match method {
        HttpMethod::Get => init.set_method("GET"),
        HttpMethod::Post => {
            init.set_method("POST");
            headers.set("content-type", "text/plain;charset=UTF-8")?;
            init.set_body(&js_sys::Uint8Array::from(&body[..]));
        }
    }
    init.set_headers(&headers);
    // Each long-poll must reach the server.
    init.set_cache(web_sys::RequestCache::NoStore);
    let abort = AbortOnDrop(web_sys::AbortController::new()?);
    init.set_signal(Some(&abort.0.signal()));
    let request = web_sys::Request::new_with_str_and_init(&url, &init)?;
    let response: web_sys::Response = JsFuture::from(fetch_request(&request)).await?.dyn_into()?;
    let status = response.status();
    let declared = response
        .headers()
        .get("content-length")?
        .and_then(|length| length.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_MESSAGE) {
        return Err(JsValue::from_str("response too large"));
    }
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    let buffer = js_sys::Uint8Array::new(&buffer);
    if buffer.length() as usize > MAX_MESSAGE {
        return Err(JsValue::from_str("response too large"));
    }
    Ok((status, Bytes::from(buffer.to_vec())))
}

/// Aborts a `fetch` whose future was dropped (a timed-out or abandoned
/// request); after the response it does nothing.
struct AbortOnDrop(web_sys::AbortController);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn describe(error: &JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            error
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{error:?}"))
}

/// The client's WebSocket as its driver holds it: the browser's.
pub(crate) struct ClientLink(SendWrapper<BrowserLink>);

/// A link whose opening is the browser's connect and handshake, given up
/// at `deadline`.
pub(crate) fn open_link(
    shared: Arc<Shared>,
    ws: WsId,
    query: Query,
    deadline: Instant,
) -> ClientLink {
    let url = shared.endpoint.url(true, &query);
    ClientLink(SendWrapper::new(BrowserLink::open(ws, &url, deadline)))
}

/// Where a browser WebSocket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsState {
    Connecting,
    Open,
    /// Closed, failed, never opened, or overflowed.
    Ended,
}

/// What the browser's callbacks leave for the link.
struct Inbox {
    state: Cell<WsState>,
    frames: RefCell<VecDeque<Frame>>,
    /// Bytes in `frames`.
    held: Cell<usize>,
    waker: RefCell<Option<Waker>>,
}

impl Inbox {
    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn register(&self, cx: &mut Context<'_>) {
        *self.waker.borrow_mut() = Some(cx.waker().clone());
    }
}

struct BrowserLink {
    id: WsId,
    /// `None` when the browser refused to make it (a bad URL).
    socket: Option<web_sys::WebSocket>,
    inbox: Rc<Inbox>,
    /// Until it opens: gives up at the deadline.
    open_timer: Option<Timer>,
    /// Whether `Opened` (or `Ended`, when it never opened) was reported.
    opening_reported: bool,
    /// Frames pushed before it opened.
    queued: VecDeque<Frame>,
    /// The driver closed it: once what is queued is sent, close.
    closing: bool,
    /// `close()` was called on the browser's socket.
    close_sent: bool,
    /// The browser calls these; they live as long as the link, and the
    /// link unhooks them before they go.
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl BrowserLink {
    fn open(id: WsId, url: &str, deadline: Instant) -> BrowserLink {
        let inbox = Rc::new(Inbox {
            state: Cell::new(WsState::Connecting),
            frames: RefCell::new(VecDeque::new()),
            held: Cell::new(0),
            waker: RefCell::new(None),
        });
        let mut link = BrowserLink {
            id,
            socket: None,
            inbox: inbox.clone(),
            open_timer: Some(Timer::at(deadline)),
            opening_reported: false,
            queued: VecDeque::new(),
            closing: false,
            close_sent: false,
            _callbacks: Vec::new(),
        };
        let socket = match web_sys::WebSocket::new(url) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::debug!(error = %describe(&error), "websocket refused by the browser");
                inbox.state.set(WsState::Ended);
                return link;
            }
        };
        socket.set_binary_type(web_sys::BinaryType::Arraybuffer);
        let on_open = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if inbox.state.get() == WsState::Connecting {
                    inbox.state.set(WsState::Open);
                }
                inbox.wake();
            })
        };
        let on_message = {
            let inbox = inbox.clone();
            let socket = socket.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let Some(frame) = event
                    .dyn_ref::<web_sys::MessageEvent>()
                    .and_then(|event| frame_of(event.data()))
                else {
                    return;
                };
                let held = inbox.held.get() + frame.len();
                if held > MAX_MESSAGE {
                    // Unread for too long: the driver stopped reading,
                    // and the server keeps sending.
                    tracing::debug!(held, "websocket overflowed: closing it");
                    let _ = socket.close_with_code_and_reason(1008, "client overloaded");
                    inbox.state.set(WsState::Ended);
                } else {
                    inbox.held.set(held);
                    inbox.frames.borrow_mut().push_back(frame);
                }
                inbox.wake();
            })
        };
        let on_close = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                inbox.state.set(WsState::Ended);
                inbox.wake();
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // An error is followed by a close event, which ends the link.
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        link._callbacks = vec![on_open, on_message, on_close];
        link.socket = Some(socket);
        link
    }

    /// Reports the opening once: `Opened`, or `Ended` when it failed or
    /// timed out first.
    fn poll_opening(&mut self, cx: &mut Context<'_>) -> Option<LinkRead> {
        if self.opening_reported {
            return None;
        }
        if self.inbox.state.get() == WsState::Connecting {
            let timed_out = self
                .open_timer
                .as_mut()
                .is_some_and(|timer| Pin::new(timer).poll(cx).is_ready());
            if !timed_out {
                return None;
            }
            tracing::debug!("websocket failed to open in time");
            self.send_close();
            self.inbox.state.set(WsState::Ended);
        }
        self.opening_reported = true;
        self.open_timer = None;
        Some(if self.opened() {
            LinkRead::Opened
        } else {
            LinkRead::Ended
        })
    }

    /// Whether it opened (the frames it got are read even after it ended).
    fn opened(&self) -> bool {
        self.inbox.state.get() == WsState::Open || !self.inbox.frames.borrow().is_empty()
    }

    fn send(&self, frame: &Frame) {
        let Some(socket) = &self.socket else { return };
        // Sending on a closing socket does nothing; it never throws once
        // the socket is open.
        let _ = match frame {
            Frame::Text(text) => socket.send_with_str(text),
            Frame::Binary(bytes) => socket.send_with_u8_array(bytes),
        };
    }

    fn send_close(&mut self) {
        if !self.close_sent {
            self.close_sent = true;
            if let Some(socket) = &self.socket {
                let _ = socket.close();
            }
        }
    }
}

impl Drop for BrowserLink {
    fn drop(&mut self) {
        self.send_close();
        if let Some(socket) = &self.socket {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
        }
    }
}

/// A message's data as a frame: text, or binary (an `ArrayBuffer`).
fn frame_of(data: JsValue) -> Option<Frame> {
    if let Some(text) = data.as_string() {
        return Some(Frame::Text(Str::from(text)));
    }
    let buffer = data.dyn_into::<js_sys::ArrayBuffer>().ok()?;
    Some(Frame::Binary(Bytes::from(
        js_sys::Uint8Array::new(&buffer).to_vec(),
    )))
}

impl Link for ClientLink {
    fn id(&self) -> WsId {
        self.0.id
    }

    fn push(&mut self, frame: Frame, _compress: bool) {
        let link = &mut *self.0;
        if link.inbox.state.get() == WsState::Open && link.queued.is_empty() {
            link.send(&frame);
        } else {
            link.queued.push_back(frame);
        }
    }

    fn is_full(&self) -> bool {
        false
    }

    fn close(&mut self) {
        self.0.closing = true;
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Option<LinkRead> {
        let link = &mut *self.0;
        link.inbox.register(cx);
        link.poll_opening(cx)
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<LinkRead> {
        let link = &mut *self.0;
        link.inbox.register(cx);
        if let Some(read) = link.poll_opening(cx) {
            return Poll::Ready(read);
        }
        if !link.opening_reported || link.closing {
            return Poll::Pending;
        }
        if let Some(frame) = link.inbox.frames.borrow_mut().pop_front() {
            link.inbox.held.set(link.inbox.held.get() - frame.len());
            return Poll::Ready(LinkRead::Frame(frame));
        }
        match link.inbox.state.get() {
            WsState::Ended => Poll::Ready(LinkRead::Ended),
            _ => Poll::Pending,
        }
    }

    fn poll_write(&mut self, _cx: &mut Context<'_>) -> LinkWrite {
        let link = &mut *self.0;
        if link.inbox.state.get() == WsState::Open {
            while let Some(frame) = link.queued.pop_front() {
                link.send(&frame);
            }
        }
        if link.closing {
            // The browser sends what it was given before the close frame.
            link.send_close();
            return LinkWrite::Finished;
        }
        LinkWrite::Busy
    }
}
