//! The redis-cluster example against a real `redis-server` started here on
//! a free 127.0.0.1 port (Debian's package; scripts/test installs it).
//! Fails, never skips, when redis-server is missing.

#[path = "../redis_cluster/cluster.rs"]
mod cluster;

use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the redis-server when the test ends, however it ends.
struct Redis(std::process::Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_a_two_server_cluster() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = Redis(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("the example's test needs redis-server on PATH (scripts/test installs it)"),
    );
    // Ready once it accepts connections.
    let ready = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("redis-server did not start");
    let url = format!("redis://127.0.0.1:{port}");
    let log = tokio::time::timeout(Duration::from_secs(30), cluster::demo(&url))
        .await
        .expect("the demo finishes")
        .expect("the demo succeeds");
    assert_eq!(
        log,
        [
            "servers in the cluster: 2",
            "client of B got news: goal!",
            "A fetched a socket of B in rooms [\"sports\"]",
            "A asked the cluster: pong from B",
        ]
    );
}
