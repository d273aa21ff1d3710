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
//! to it as they come, and a link says it is full while the browser holds
//! [`WRITE_HIGH`] bytes unsent, looking again every [`DRAIN_CHECK`]; the
//! rest waits in the machine, as natively. Reading is bounded: a link
//! that would hold more than [`MAX_MESSAGE`] of unread frames closes, and
//! response bodies are read in chunks up to the same bound.

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
    /// The clock deadlines are read from.
    fn clock(&self) -> crate::runtime::Clock;
}

impl ClientIo for Browser {
    fn spawn(&self, task: BoxFuture) {
        Runtime::spawn(self, task)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Runtime::sleep_until(self, deadline)
    }

    fn clock(&self) -> crate::runtime::Clock {
        Runtime::clock(self)
    }
}

/// The page's (or worker's) protocol (`https:`) and host (`example.com:8080`),
/// which the client's URL is completed with, as Node's client does.
pub(crate) fn page_address() -> Option<(String, String)> {
    let location = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location")).ok()?;
    let field = |name: &str| {
        js_sys::Reflect::get(&location, &JsValue::from_str(name))
            .ok()?
            .as_string()
    };
    Some((field("protocol")?, field("host")?))
}

/// A `setTimeout` as a future; cleared when dropped, so a timer the driver
/// replaced costs nothing after. It completes only once the clock has
/// reached its deadline: a browser may fire a little early by the clock
/// (coarse `performance.now()`), and waits over 2^31 - 1 ms are cut there;
/// either way it arms itself again for the rest.
struct Timer {
    deadline: Instant,
    state: Rc<TimerState>,
    handle: JsValue,
    /// Called by the browser; kept alive until the timer is cleared.
    callback: Closure<dyn FnMut()>,
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
            let waker = fire.waker.borrow_mut().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        let handle = arm(&callback, deadline);
        Timer {
            deadline,
            state,
            handle,
            callback,
        }
    }
}

/// Sets a timeout for `deadline`, rounded up to whole milliseconds and at
/// least 1 ms, at most 2^31 - 1 ms (browsers fire at once beyond).
fn arm(callback: &Closure<dyn FnMut()>, deadline: Instant) -> JsValue {
    let wait = deadline.saturating_duration_since(Instant::now());
    let ms = wait.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
    set_timeout(callback.as_ref().unchecked_ref(), ms)
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.get() {
            if Instant::now() >= self.deadline {
                return Poll::Ready(());
            }
            self.state.fired.set(false);
            let handle = arm(&self.callback, self.deadline);
            self.handle = handle;
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
    pub(crate) fn retire(&self) {}
    pub(crate) fn reuse(&self) {}
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
    let body = match response.body() {
        Some(stream) => read_bounded(stream).await?,
        None => Bytes::new(),
    };
    Ok((status, body))
}

/// Reads a response body chunk by chunk, failing as soon as it passes
/// [`MAX_MESSAGE`] (a compressed or chunked body has no `Content-Length`
/// to check first); the request is then aborted with the future.
async fn read_bounded(stream: web_sys::ReadableStream) -> Result<Bytes, JsValue> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))?;
        if done.as_bool().unwrap_or(true) {
            return Ok(Bytes::from(body));
        }
        let value: js_sys::Uint8Array =
            js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))?.unchecked_into();
        let length = value.length() as usize;
        if body.len() + length > MAX_MESSAGE {
            let _ = reader.cancel();
            return Err(JsValue::from_str("response too large"));
        }
        let start = body.len();
        body.resize(start + length, 0);
        value.copy_to(&mut body[start..]);
    }
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

/// What each unread frame counts for beyond its bytes, so that empty
/// frames are bounded too.
const FRAME_OVERHEAD: usize = 64;

/// Bytes the browser may hold unsent on a WebSocket before the link says
/// it is full: the driver then leaves frames in the machine, whose buffers
/// are bounded (emits fail with `BufferFull`), as with a native link.
const WRITE_HIGH: u32 = 256 * 1024;

/// How often a full link looks at the browser's send buffer again: the
/// browser has no event for it draining.
const DRAIN_CHECK: std::time::Duration = std::time::Duration::from_millis(20);

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
    /// What `frames` counts for: bytes plus [`FRAME_OVERHEAD`] each.
    held: Cell<usize>,
    /// `close()` was called on the socket, by the link or on overflow.
    close_sent: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Inbox {
    fn wake(&self) {
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn register(&self, cx: &mut Context<'_>) {
        *self.waker.borrow_mut() = Some(cx.waker().clone());
    }

    /// Closes the socket once. (Scripts may only use codes 1000 and
    /// 3000-4999; a plain close is 1000.)
    fn close(&self, socket: &web_sys::WebSocket) {
        if !self.close_sent.replace(true) {
            let _ = socket.close();
        }
    }

    /// Takes a message the browser delivered, or closes the socket when
    /// the link would hold more than [`MAX_MESSAGE`] unread.
    fn receive(&self, socket: &web_sys::WebSocket, data: JsValue) {
        if self.state.get() == WsState::Ended {
            return;
        }
        // Sized before it is copied into the module's memory.
        let size = if let Some(text) = data.dyn_ref::<js_sys::JsString>() {
            text.length() as usize
        } else if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
            buffer.byte_length() as usize
        } else {
            return;
        };
        let fits = |size: usize| self.held.get() + size + FRAME_OVERHEAD <= MAX_MESSAGE;
        let frame = if fits(size) { frame_of(data) } else { None };
        match frame {
            Some(frame) if fits(frame.len()) => {
                self.held
                    .set(self.held.get() + frame.len() + FRAME_OVERHEAD);
                self.frames.borrow_mut().push_back(frame);
            }
            _ => {
                // Unread for too long (the driver stopped reading while
                // its listeners catch up) and the server keeps sending, or
                // one message is too large: the link ends, the client
                // reconnects.
                tracing::debug!(
                    held = self.held.get(),
                    size,
                    "websocket overflowed: closing it"
                );
                self.close(socket);
                self.state.set(WsState::Ended);
            }
        }
        self.wake();
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
    /// While full: when to look at the browser's send buffer again.
    drain_timer: Option<Timer>,
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
            close_sent: Cell::new(false),
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
            drain_timer: None,
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
                if let Some(event) = event.dyn_ref::<web_sys::MessageEvent>() {
                    inbox.receive(&socket, event.data());
                }
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
        if let Some(socket) = &self.socket {
            self.inbox.close(socket);
        }
    }

    /// Whether the browser holds [`WRITE_HIGH`] bytes or more unsent.
    fn backed_up(&self) -> bool {
        self.inbox.state.get() == WsState::Open
            && self
                .socket
                .as_ref()
                .is_some_and(|socket| socket.buffered_amount() >= WRITE_HIGH)
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
        match link.inbox.state.get() {
            // Gone: the link reports its end; the frame goes nowhere, as
            // on a native WebSocket that failed.
            WsState::Ended => {}
            WsState::Open if link.queued.is_empty() => link.send(&frame),
            _ => link.queued.push_back(frame),
        }
    }

    fn is_full(&self) -> bool {
        self.0.backed_up()
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
        let frame = link.inbox.frames.borrow_mut().pop_front();
        if let Some(frame) = frame {
            let held = link.inbox.held.get() - frame.len() - FRAME_OVERHEAD;
            link.inbox.held.set(held);
            return Poll::Ready(LinkRead::Frame(frame));
        }
        match link.inbox.state.get() {
            WsState::Ended => Poll::Ready(LinkRead::Ended),
            _ => Poll::Pending,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> LinkWrite {
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
        // Gone, and nothing left to read: writing fails, as natively (the
        // driver may not be reading just now, so the read side would not
        // report it).
        if link.inbox.state.get() == WsState::Ended
            && link.opening_reported
            && link.inbox.frames.borrow().is_empty()
        {
            return LinkWrite::Failed;
        }
        if link.backed_up() {
            // Look again shortly: the driver is woken by the timer.
            let timer = link
                .drain_timer
                .get_or_insert_with(|| Timer::at(Instant::now() + DRAIN_CHECK));
            if Pin::new(timer).poll(cx).is_ready() {
                let mut next = Timer::at(Instant::now() + DRAIN_CHECK);
                let _ = Pin::new(&mut next).poll(cx);
                link.drain_timer = Some(next);
            }
        } else {
            link.drain_timer = None;
        }
        LinkWrite::Busy
    }
}
