//! A Socket.IO server and a client on smol, in one process, with no tokio
//! runtime: the same `socketio` API as on tokio, run by `runtime-smol`.
//!
//! Run: `cargo run -p examples --example smol`. The server greets each
//! client and adds numbers for it; the client prints the greeting, asks for
//! a sum with an ack, and leaves.

use std::time::Duration;

use runtime_smol::SmolRuntime;
use socketio::client::ClientOptions;
use socketio::extract::Ack;
use socketio::{Args, Data, Payload, SocketIo, SocketIoConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        // The server.
        let io = SocketIo::new(SmolRuntime, SocketIoConfig::default());
        io.on_connection("/", |socket| async move {
            let greeting = format!("welcome, {}", socket.id());
            let _ = socket.emit("welcome", &greeting).await;
            socket.on(
                "sum",
                |Args((a, b)): Args<(i64, i64)>, ack: Ack| async move {
                    let _ = ack.send(&(a + b)).await;
                },
            );
        });
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        smol::spawn(runtime_smol::serve(listener, io)).detach();
        println!("server listening on {url}");

        // The client: listeners first, then connect.
        let socket = runtime_smol::io(&url, ClientOptions::default())?;
        let (greeted, greeting) = smol::channel::bounded(1);
        socket.on("welcome", move |_, Data(text): Data<String>, _| {
            let greeted = greeted.clone();
            async move {
                let _ = greeted.send(text).await;
            }
        });
        socket.connect().await?;
        println!("client got: {}", greeting.recv().await?);

        let sum = socket
            .emit_with_ack(
                "sum",
                Payload::args(&(20, 22))?,
                Some(Duration::from_secs(5)),
            )
            .await?;
        println!(
            "client asked 20 + 22, the server answered {}",
            sum.first::<i64>()?
        );

        let manager = socket.manager();
        socket.disconnect();
        manager.close();
        manager.closed().await;
        Ok(())
    })
}
