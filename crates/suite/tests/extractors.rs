//! Handlers as functions of extractors, over real loopback sockets: any
//! order and number of arguments, global state, typed per-socket
//! extensions set by a connection middleware or a tower layer in front of
//! the server, and what happens when an argument cannot be extracted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use serde_json::json;
use socketio::extract::{Ack, Attachments, Data, Event, Extension, State, TryData};
use socketio::{ConnectError, HttpHandler, SocketIo, SocketIoConfig, SocketRef};
use suite::raw::{ask, socketio};
use suite::{sleep, within_for, TestRuntime};

const LIMIT: Duration = Duration::from_secs(20);

/// Extractors in any order and number; a handler with none.
async fn extractors_come_in_any_order_and_number<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on(
            "add",
            |Data(n): Data<i64>, Event(name): Event, socket: SocketRef, ack: Ack| async move {
                let _ = ack.send(&(name, n + 1, socket.namespace())).await;
            },
        );
        socket.on(
            "bytes",
            |ack: Ack, Attachments(files): Attachments, TryData(first): TryData<i64>| async move {
                let sizes: Vec<usize> = files.iter().map(|file| file.len()).collect();
                let _ = ack.send(&(sizes, first.is_err())).await;
            },
        );
        socket.on("nothing", || async {});
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the answers", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["add",5]"#).await,
            r#"431[["add",6,"/"]]"#
        );
        ws.send(Message::text(
            r#"451-2["bytes",{"_placeholder":true,"num":0}]"#,
        ))
        .await
        .unwrap();
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        let answer = ask::<R>(&mut ws, r#"42["nothing"]"#).await;
        // The binary event's answer: the attachment's size, and the first
        // argument (an object) is not an i64.
        assert_eq!(answer, r#"432[[[3],true]]"#);
    })
    .await;
}

#[derive(Clone)]
struct Visits(Arc<AtomicUsize>);

/// `State<T>` hands every handler the value given to the server.
async fn state_reaches_every_handler<R: TestRuntime>(rt: R) {
    let config = SocketIoConfig::default().with_state(Visits(Arc::default()));
    let io = SocketIo::new(rt, config);
    io.on_connection("/", |socket| async move {
        socket.on(
            "visit",
            |State(visits): State<Visits>, ack: Ack| async move {
                let count = visits.0.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = ack.send(&count).await;
            },
        );
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the visits", async {
        let mut first = socketio(rt, addr, "/", None).await;
        let mut second = socketio(rt, addr, "/", None).await;
        assert_eq!(ask::<R>(&mut first, r#"421["visit"]"#).await, "431[1]");
        assert_eq!(ask::<R>(&mut second, r#"422["visit"]"#).await, "432[2]");
    })
    .await;
}

#[derive(Clone, Debug, PartialEq)]
struct User(String);

/// Node's `io.use` pattern: a middleware checks the token and leaves the
/// user on the socket, typed (an extension) and as data.
async fn a_middleware_hands_the_user_to_the_socket<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.of("/").use_middleware(|request| async move {
        #[derive(serde::Deserialize)]
        struct Auth {
            token: String,
        }
        match request.auth::<Auth>() {
            Ok(auth) if auth.token == "secret" => {
                request.extensions().insert(User("ann".into()));
                request.set_data(json!({ "user": "ann" }));
                Ok(())
            }
            _ => Err(ConnectError::new("unauthorized")),
        }
    });
    io.on_connection("/", |socket| async move {
        socket.on(
            "whoami",
            |Extension(User(name)): Extension<User>, socket: SocketRef, ack: Ack| async move {
                let _ = ack.send(&(name, socket.data())).await;
            },
        );
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the user", async {
        let mut ws = socketio(rt, addr, "/", Some(r#"{"token":"secret"}"#)).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["whoami"]"#).await,
            r#"431[["ann",{"user":"ann"}]]"#
        );
    })
    .await;
}

/// An argument that cannot be extracted stops the handler and reaches the
/// error listeners; `Option` makes it optional.
async fn a_missing_argument_goes_to_the_error_listeners<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = errors.clone();
    io.on_connection("/", move |socket| {
        let seen = seen.clone();
        async move {
            socket.on_error(move |_, error| {
                seen.lock().unwrap().push(error.to_string());
                async {}
            });
            socket.on(
                "who",
                |Extension(user): Extension<User>, ack: Ack| async move {
                    let _ = ack.send(&user.0).await;
                },
            );
            socket.on(
                "who-maybe",
                |user: Option<Extension<User>>, ack: Ack| async move {
                    let _ = ack.send(&user.is_some()).await;
                },
            );
            socket.on("state", |State(_): State<Visits>| async {});
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the errors", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        ws.send(Message::text(r#"421["who"]"#)).await.unwrap();
        // Asks no ack: an `Ack` argument cannot be made.
        ws.send(Message::text(r#"42["who-maybe"]"#)).await.unwrap();
        ws.send(Message::text(r#"42["state"]"#)).await.unwrap();
        assert_eq!(ask::<R>(&mut ws, r#"422["who-maybe"]"#).await, "432[false]");
        while errors.lock().unwrap().len() < 3 {
            sleep(Duration::from_millis(10)).await;
        }
        let errors = errors.lock().unwrap().clone();
        assert!(errors[0].contains("no extension of type"), "{errors:?}");
        assert!(errors[0].contains("User"), "{errors:?}");
        assert!(errors[1].contains("awaits no ack"), "{errors:?}");
        assert!(errors[2].contains("no state of type"), "{errors:?}");
    })
    .await;
}

#[derive(Clone, Debug, PartialEq)]
struct Tenant(&'static str);

/// A layer in front of the server, as a tower auth layer would be: it puts
/// a value on the HTTP request.
#[derive(Clone)]
struct WithTenant<H>(H);

impl<H: HttpHandler> HttpHandler for WithTenant<H> {
    fn call(
        &self,
        mut request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = socketio::engine::HttpReply> + Send>> {
        request.extensions_mut().insert(Tenant("acme"));
        self.0.call(request)
    }
}

/// What a layer put on the HTTP request reaches the middlewares and every
/// socket of the connection.
async fn request_extensions_reach_middlewares_and_sockets<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.of("/").use_middleware(|request| async move {
        match request.extensions().get::<Tenant>() {
            Some(_) => Ok(()),
            None => Err(ConnectError::new("no tenant")),
        }
    });
    io.on_connection("/", |socket| async move {
        socket.on(
            "tenant",
            |Extension(Tenant(tenant)): Extension<Tenant>, ack: Ack| async move {
                let _ = ack.send(&tenant).await;
            },
        );
    });
    let addr = rt.serve(WithTenant(io)).await;
    within_for(LIMIT, "the tenant", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["tenant"]"#).await,
            r#"431["acme"]"#
        );
    })
    .await;
}

suite::on_each_runtime!(
    extractors_come_in_any_order_and_number,
    state_reaches_every_handler,
    a_middleware_hands_the_user_to_the_socket,
    a_missing_argument_goes_to_the_error_listeners,
    request_extensions_reach_middlewares_and_sockets,
);
