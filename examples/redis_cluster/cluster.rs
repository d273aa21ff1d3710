//! Two Socket.IO servers sharing one Redis through `adapter-redis`, a
//! client on each: what one server does reaches the other's clients.
//! Shared by `main.rs` and the example's test.

use std::sync::Arc;
use std::time::Duration;

use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory};
use runtime_tokio::TokioRuntime;
use socketio::client::ClientOptions;
use socketio::extract::Ack;
use socketio::{Data, Payload, SocketIo, SocketIoConfig, SocketRef};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One server of the cluster, listening on a free port; returns it and its
/// URL. Its clients may `join` a room.
async fn server(
    name: &'static str,
    redis_url: &str,
) -> Result<(SocketIo<TokioRuntime>, String), Error> {
    let mut config = SocketIoConfig::default();
    config.adapter = Arc::new(RedisAdapterFactory::new(
        redis_url,
        RedisAdapterConfig::default(),
    )?);
    let io = SocketIo::new(TokioRuntime, config);
    io.on_connection("/", |socket| async move {
        socket.on(
            "join",
            |socket: SocketRef, Data(room): Data<String>, ack: Ack| async move {
                socket.join(&room);
                let _ = ack.send(&true).await;
            },
        );
    });
    // Server-side events come from the other servers of the cluster.
    io.of("/")
        .on_server_event("ping", move |_, ack| async move {
            if let Some(ack) = ack {
                ack.send(Payload::single(&format!("pong from {name}")).expect("a string"));
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(runtime_tokio::serve(listener, io.clone()));
    Ok((io, url))
}

/// Runs the demo against the Redis at `redis_url`; returns what happened,
/// one line per step.
pub async fn demo(redis_url: &str) -> Result<Vec<String>, Error> {
    let mut log = Vec::new();
    let (a, _) = server("A", redis_url).await?;
    let (b, url_b) = server("B", redis_url).await?;
    // Each server subscribes in the background: wait until A counts both.
    while a.of("/").server_count().await? < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.push(format!(
        "servers in the cluster: {}",
        a.of("/").server_count().await?
    ));

    // A client of server B joins the "sports" room.
    let client = runtime_tokio::io(&url_b, ClientOptions::default())?;
    let (news_tx, mut news) = tokio::sync::mpsc::unbounded_channel();
    client.on("news", move |_, Data(text): Data<String>, _| {
        let news_tx = news_tx.clone();
        async move {
            let _ = news_tx.send(text);
        }
    });
    client.connect().await?;
    let timeout = Some(Duration::from_secs(5));
    client
        .emit_with_ack("join", Payload::single("sports")?, timeout)
        .await?;

    // Server A broadcasts to the room: B's client gets it.
    a.of("/").to("sports").emit("news", "goal!").await?;
    let got = tokio::time::timeout(Duration::from_secs(5), news.recv()).await?;
    log.push(format!("client of B got news: {}", got.unwrap_or_default()));

    // Server A sees B's socket, its rooms and data.
    for socket in a.of("/").broadcast().fetch_sockets().await? {
        let mut rooms: Vec<String> = socket.rooms.iter().map(|room| room.to_string()).collect();
        rooms.retain(|room| room.as_str() != socket.id.as_str());
        log.push(format!("A fetched a socket of B in rooms {rooms:?}"));
    }

    // Server A asks every other server, and gets B's answer.
    let answers = a
        .of("/")
        .server_side_emit_with_ack("ping", Payload::empty(), Duration::from_secs(5))
        .await?;
    for answer in answers {
        log.push(format!(
            "A asked the cluster: {}",
            answer.first::<String>()?
        ));
    }

    client.disconnect();
    a.close().await;
    b.close().await;
    Ok(log)
}
