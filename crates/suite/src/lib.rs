//! One test source, every runtime: the harness the suites of `tests/` are
//! written against. A suite is an `async fn(runtime)` generic over
//! [`TestRuntime`]; [`on_each_runtime!`] makes a `#[test]` of it per runtime
//! (`<name>::tokio`, `<name>::smol`). Test bodies use runtime-neutral
//! pieces only: `futures-channel` channels, [`within`] (an `async-io`
//! timer, which runs under any executor), std processes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use socketio::{ClientRuntime, HttpHandler};

pub mod node;

/// A runtime the suites run on.
pub trait TestRuntime: ClientRuntime + Copy {
    /// Runs `future` to completion on a fresh instance of the runtime.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Serves `handler` on 127.0.0.1 (a free port) in the background;
    /// returns the address.
    fn serve(self, handler: impl HttpHandler) -> impl Future<Output = SocketAddr>;
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

    async fn serve(self, handler: impl HttpHandler) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(runtime_tokio::serve(listener, handler));
        addr
    }
}

impl TestRuntime for runtime_smol::SmolRuntime {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    async fn serve(self, handler: impl HttpHandler) -> SocketAddr {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        smol::spawn(runtime_smol::serve(listener, handler)).detach();
        addr
    }
}

/// The longest any single step of a suite may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future` for at most [`WAIT`], naming `what` if it does not end.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    let deadline = async {
        async_io::Timer::after(WAIT).await;
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
