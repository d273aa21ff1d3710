//! A real `redis-server` (Debian's package; `scripts/test` installs it) for
//! the Redis adapter suites: started on a free 127.0.0.1 port with nothing
//! persisted, killed when dropped, and stoppable and restartable on the
//! same port to play a broker that goes away and comes back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process of this test.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    pub async fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer { child: None, port };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until it is gone: every connection to it drops.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port and waits until it answers `PING`.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "cannot start redis-server (the Redis adapter tests need it on PATH: \
                 Debian's redis-server package; scripts/test installs it)",
            );
        self.child = Some(child);
        let port = self.port;
        let ready = smol::unblock(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if ping(port).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
        .await;
        assert!(
            ready,
            "redis-server on port {port} did not answer PING within 10 s"
        );
    }
}

impl RedisServer {
    /// How many connections subscribe to shard channel `channel`
    /// (`PUBSUB SHARDNUMSUB`, asked with `redis-cli`).
    pub async fn shard_subscribers(&self, channel: &str) -> usize {
        let (port, channel) = (self.port.to_string(), channel.to_owned());
        let output = smol::unblock(move || {
            Command::new("redis-cli")
                .args(["-p", &port, "PUBSUB", "SHARDNUMSUB", &channel])
                .output()
        })
        .await
        .expect("redis-cli (Debian's redis-tools, which redis-server depends on)");
        let text = String::from_utf8_lossy(&output.stdout);
        // "channel\ncount\n"
        text.lines()
            .nth(1)
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected SHARDNUMSUB reply: {text:?}"))
    }
}

/// One `PING` on a connection of its own.
fn ping(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply)?;
    if &reply == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(std::io::Error::other("unexpected reply"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
