//! What the API needs from an async runtime: spawning tasks and sleeping
//! ([`Runtime`]), and for the client, opening TCP connections
//! ([`ClientRuntime`]; in the browser, `fetch` and `WebSocket`).
//!
//! Everything else (protocol, HTTP handling, WebSocket framing, TLS) is
//! written once in this crate over these operations and the runtime-neutral
//! `futures-io` traits. A runtime crate implements them and owns the
//! listener.

use std::future::Future;
#[cfg(not(target_arch = "wasm32"))]
use std::io;
use std::pin::Pin;
// `std::time::Instant` natively (the same type); `performance.now()` in
// the browser, where std's clock panics.
use web_time::Instant as StdInstant;

use engineio_proto::Instant;

/// A boxed, sendable future, as spawned tasks are handed over.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A timer: completes at its deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An async runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: BoxFuture);

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: StdInstant) -> Sleep;

    /// The clock every deadline of the server and the client is read
    /// from. The wall clock ([`Clock::new`]) unless the runtime simulates
    /// time: a simulation's `sleep_until` and this clock must agree.
    fn clock(&self) -> Clock {
        Clock::new()
    }
}

/// A connected byte stream, as the client's transports use it.
#[cfg(not(target_arch = "wasm32"))]
pub trait Stream: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static {}

#[cfg(not(target_arch = "wasm32"))]
impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The future of [`ClientRuntime::connect_tcp`].
#[cfg(not(target_arch = "wasm32"))]
pub type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

/// What the client needs beyond [`Runtime`]: outgoing TCP connections. TLS,
/// HTTP and WebSocket are layered on top in this crate.
#[cfg(not(target_arch = "wasm32"))]
pub trait ClientRuntime: Runtime {
    /// A connected TCP stream.
    type Tcp: Stream;

    /// Resolves `host` and connects to `host:port` (with `TCP_NODELAY`: the
    /// protocol sends small messages that must not wait).
    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp>;
}

/// What the client runs on. In the browser there is one:
/// [`crate::client::Browser`], whose `fetch` and `WebSocket` carry the
/// client's HTTP and WebSockets.
#[cfg(target_arch = "wasm32")]
pub trait ClientRuntime: Runtime + crate::client::browser::Platform {}

/// Maps a time source (the wall clock, or a simulation's virtual one)
/// onto the protocol machines' [`Instant`]s. Get one from
/// [`Runtime::clock`].
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: StdInstant,
    source: fn() -> StdInstant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A wall clock whose epoch is now.
    pub fn new() -> Clock {
        Clock::with_source(StdInstant::now)
    }

    /// A clock reading `source` (which must never go back), whose epoch is
    /// now: what a simulated runtime's [`Runtime::clock`] returns.
    pub fn with_source(source: fn() -> StdInstant) -> Clock {
        Clock {
            start: source(),
            source,
        }
    }

    /// The current time as a protocol instant.
    pub fn now(&self) -> Instant {
        Instant::from_duration(self.now_std().saturating_duration_since(self.start))
    }

    /// The current time, for deadlines given to [`Runtime::sleep_until`].
    pub fn now_std(&self) -> StdInstant {
        (self.source)()
    }

    /// The wall-clock moment of a protocol instant.
    pub fn to_std(&self, at: Instant) -> StdInstant {
        self.start + at.since_epoch()
    }
}

/// An object-safe view of a [`Runtime`], for code that is not generic over
/// it: adapters get one ([`crate::adapter::LocalNamespace::runtime`]) to
/// spawn their broker loops and time out their requests on whatever
/// runtime the server runs on.
pub trait DynRuntime: Send + Sync + 'static {
    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: BoxFuture);

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: StdInstant) -> Sleep;

    /// See [`Runtime::clock`].
    fn clock(&self) -> Clock;
}

impl<R: Runtime> DynRuntime for R {
    fn spawn(&self, task: BoxFuture) {
        Runtime::spawn(self, task)
    }

    fn sleep_until(&self, deadline: StdInstant) -> Sleep {
        Runtime::sleep_until(self, deadline)
    }

    fn clock(&self) -> Clock {
        Runtime::clock(self)
    }
}
