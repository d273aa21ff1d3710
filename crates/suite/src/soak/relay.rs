//! A TCP relay on loopback for the soaks, on tokio, one task per
//! connection (thousands of connections cost no threads):
//!
//! - a load balancer: every new connection goes to the current target;
//!   [`Relay::retarget`] moves new ones elsewhere (what a balancer's health
//!   check does when a server dies), connections already open stay with
//!   their server and end with it;
//! - a bad network: [`Faults`] delay what it carries, throttle it, stall
//!   connections (nothing passes for a while, as when packets are lost)
//!   and cut them, at random from a seed, so a failing run can be
//!   replayed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the relay does to the traffic it carries. The default carries it
/// as it comes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Each chunk is held this long, each way.
    pub latency: Duration,
    /// Plus up to this much more, at random.
    pub jitter: Duration,
    /// At most this many bytes a second, each way, per connection.
    pub bandwidth: Option<u64>,
    /// The chance, each second of a connection's life, that it stalls.
    pub stall_chance: f64,
    /// How long a stall lasts.
    pub stall: Duration,
    /// The chance, each second of a connection's life, that it is cut.
    pub cut_chance: f64,
}

/// What happened to the connections so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections cut at random.
    pub cuts: AtomicU64,
    /// Stalls.
    pub stalls: AtomicU64,
}

struct Shared {
    target: Mutex<SocketAddr>,
    faults: Mutex<Faults>,
    seed: u64,
    tally: Tally,
}

/// A relay on a loopback port of its own. Stops accepting when dropped.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free port of 127.0.0.1 and relays to `target`; random
    /// faults draw from `seed` (each connection from `seed` and its
    /// number).
    pub async fn start(target: SocketAddr, seed: u64) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            faults: Mutex::new(Faults::default()),
            seed,
            tally: Tally::default(),
        });
        let accepting = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        // Out of descriptors, most likely: clients retry.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let number = shared.tally.connections.fetch_add(1, Relaxed);
                    tokio::spawn(carry(shared.clone(), client, number));
                }
            }
        });
        Ok(Relay {
            addr,
            shared,
            accepting,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Sends new connections to `target`.
    pub fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap() = target;
    }

    /// Applies `faults` from now on, to every connection.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    /// What happened so far.
    pub fn tally(&self) -> &Tally {
        &self.shared.tally
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Carries one connection both ways until either side ends it or a fault
/// cuts it; a target that refuses closes the client's connection at once.
async fn carry(shared: Arc<Shared>, client: TcpStream, number: u64) {
    let target = *shared.target.lock().unwrap();
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut rng =
        fastrand::Rng::with_seed(shared.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let stalled_until = Arc::new(Mutex::new(Instant::now()));
    let up = pipe(
        shared.clone(),
        client_read,
        server_write,
        rng.u64(..),
        stalled_until.clone(),
    );
    let down = pipe(
        shared.clone(),
        server_read,
        client_write,
        rng.u64(..),
        stalled_until.clone(),
    );
    let fate = async {
        // Each second, maybe a stall, maybe the end.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let faults = *shared.faults.lock().unwrap();
            if rng.f64() < faults.cut_chance {
                shared.tally.cuts.fetch_add(1, Relaxed);
                return;
            }
            if rng.f64() < faults.stall_chance {
                shared.tally.stalls.fetch_add(1, Relaxed);
                *stalled_until.lock().unwrap() = Instant::now() + faults.stall;
            }
        }
    };
    // Either side's end is passed on to the other; a cut drops both halves
    // at once, so both sides see the connection fail mid-protocol.
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = fate => {}
    }
}

/// One direction: a reader stamps chunks, a writer lets each go once its
/// latency has passed, within the bandwidth, and not while stalled. The
/// queue between them is bounded, so a slow side pushes back on TCP.
async fn pipe(
    shared: Arc<Shared>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    seed: u64,
    stalled_until: Arc<Mutex<Instant>>,
) {
    let (chunks, mut queue) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let writer_shared = shared.clone();
    let reading = async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        loop {
            let mut chunk = vec![0; 16 * 1024];
            let read = match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            chunk.truncate(read);
            let faults = *shared.faults.lock().unwrap();
            let extra = faults.jitter.mul_f64(rng.f64());
            let due = Instant::now() + faults.latency + extra;
            if chunks.send((due, chunk)).await.is_err() {
                return;
            }
        }
    };
    let writing = async move {
        // Chunks leave in order: one held back holds back those after it.
        while let Some((due, chunk)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            loop {
                let until = *stalled_until.lock().unwrap();
                if until <= Instant::now() {
                    break;
                }
                tokio::time::sleep_until(until).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            let bandwidth = writer_shared.faults.lock().unwrap().bandwidth;
            if let Some(bandwidth) = bandwidth {
                let pause = Duration::from_secs_f64(chunk.len() as f64 / bandwidth.max(1) as f64);
                tokio::time::sleep(pause).await;
            }
        }
        // The reader ended: pass the end on.
        let _ = to.shutdown().await;
    };
    // Both run until the writer passed on everything the reader took.
    tokio::join!(reading, writing);
}
