//! One test source, every runtime: the harness the suites of `tests/` are
//! written against. A suite is an `async fn(runtime)` generic over
//! [`TestRuntime`]; [`on_each_runtime!`] makes a `#[test]` of it per runtime
//! (`<name>::tokio`, `<name>::smol`). Test bodies use runtime-neutral
//! pieces only: `futures-channel` channels, [`within`] (an `async-io`
//! timer, which runs under any executor), std processes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::{AbortHandle, Abortable};
use socketio::{ClientRuntime, HttpHandler, Runtime};

pub mod admin;
pub mod cluster;
pub mod fixtures;
pub mod mirror;
pub mod node;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod soak;

/// A runtime the suites run on.
pub trait TestRuntime: ClientRuntime + Copy {
    /// Runs `future` to completion on a fresh instance of the runtime.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Serves `handler` on `addr` (port 0: a free one) in the background;
    /// returns the address bound and a handle that stops accepting
    /// connections (those already accepted go on).
    fn serve_at(
        self,
        addr: SocketAddr,
        handler: impl HttpHandler,
    ) -> impl Future<Output = (SocketAddr, AbortHandle)> + Send;

    /// Serves `handler` on 127.0.0.1 (a free port) in the background for
    /// the rest of the test; returns the address.
    fn serve(self, handler: impl HttpHandler) -> impl Future<Output = SocketAddr> + Send {
        async move {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            self.serve_at(any, handler).await.0
        }
    }
}

/// Runs `future` on `runtime` until it ends or `AbortHandle::abort`.
fn spawn_abortable<R: Runtime>(
    runtime: R,
    future: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> AbortHandle {
    let (handle, registration) = AbortHandle::new_pair();
    runtime.spawn(Box::pin(async move {
        let _ = Abortable::new(future, registration).await;
    }));
    handle
}

impl TestRuntime for runtime_tokio::TokioRuntime {
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future)
    }

    async fn serve_at(
        self,
        addr: SocketAddr,
        handler: impl HttpHandler,
    ) -> (SocketAddr, AbortHandle) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        (
            addr,
            spawn_abortable(self, runtime_tokio::serve(listener, handler)),
        )
    }
}

impl TestRuntime for runtime_smol::SmolRuntime {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    async fn serve_at(
        self,
        addr: SocketAddr,
        handler: impl HttpHandler,
    ) -> (SocketAddr, AbortHandle) {
        let listener = smol::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        (
            addr,
            spawn_abortable(self, runtime_smol::serve(listener, handler)),
        )
    }
}

/// A client of `url` (a namespace's URL) with `options`, connected,
/// recording the string argument of each `event` it gets.
pub async fn recording_client<R: TestRuntime>(
    rt: R,
    url: &str,
    options: socketio::client::ClientOptions,
    event: &str,
) -> (
    socketio::client::ClientSocket,
    futures_channel::mpsc::UnboundedReceiver<String>,
) {
    let client = socketio::client::io(rt, url, options).expect("a valid url");
    let (seen, got) = futures_channel::mpsc::unbounded();
    client.on(
        event,
        move |_, socketio::Data(text): socketio::Data<String>, _| {
            let seen = seen.clone();
            async move {
                let _ = seen.unbounded_send(text);
            }
        },
    );
    within("a client to connect", client.connect())
        .await
        .expect("the client connects");
    (client, got)
}

/// The longest any single step of a suite may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Completes when standard input closes: a server process started by a
/// test or a script exits with its parent this way.
pub async fn stdin_closed() {
    smol::unblock(|| {
        use std::io::BufRead;
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut line).is_ok_and(|read| read > 0) {
            line.clear();
        }
    })
    .await;
}

/// Completes after `duration` (an `async-io` timer: any executor).
pub async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}

/// Awaits `future` for at most [`WAIT`], naming `what` if it does not end.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    within_for(WAIT, what, future).await
}

/// Awaits `future` for at most `limit`, naming `what` if it does not end.
pub async fn within_for<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    let deadline = async {
        async_io::Timer::after(limit).await;
        panic!("timed out: {what}");
    };
    futures_util::pin_mut!(future);
    futures_util::pin_mut!(deadline);
    match futures_util::future::select(future, deadline).await {
        futures_util::future::Either::Left((output, _)) => output,
        futures_util::future::Either::Right((never, _)) => never,
    }
}

/// Makes a `#[test]` per runtime of each `async fn name<R: TestRuntime>(runtime: R)`
/// named: `name::tokio` and `name::smol`.
#[macro_export]
macro_rules! on_each_runtime {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn tokio() {
                    use $crate::TestRuntime as _;
                    runtime_tokio::TokioRuntime::block_on(super::$name(runtime_tokio::TokioRuntime));
                }

                #[test]
                fn smol() {
                    use $crate::TestRuntime as _;
                    runtime_smol::SmolRuntime::block_on(super::$name(runtime_smol::SmolRuntime));
                }
            }
        )*
    };
}
