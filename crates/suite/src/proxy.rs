//! A TCP proxy on loopback that a test can cut: a real network drop
//! between a client and its server, seen by both sides as the network
//! failing, not as either side closing politely.
//!
//! It also counts the bytes it carries each way, for a test that checks
//! what went on the wire (compression).
//!
//! It runs on plain threads (an accepting one, two copying ones per
//! connection), so it serves tests on any runtime alike.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A proxy from its own loopback port to `target`. Dropping it cuts every
/// connection and stops it.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    counts: Arc<Counts>,
}

/// Bytes carried so far, over every connection.
#[derive(Default)]
struct Counts {
    to_server: AtomicU64,
    to_client: AtomicU64,
}

struct State {
    /// Where new connections go.
    target: SocketAddr,
    /// While cut, new connections are closed as soon as they are accepted.
    cut: bool,
    stopped: bool,
    /// Both ends of every live connection, to shut down on a cut.
    streams: Vec<TcpStream>,
}

impl Proxy {
    /// Starts forwarding connections on a free loopback port to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            target,
            cut: false,
            stopped: false,
            streams: Vec::new(),
        }));
        let counts = Arc::new(Counts::default());
        let accepting = state.clone();
        let counting = counts.clone();
        thread::spawn(move || accept(listener, accepting, counting));
        Proxy {
            addr,
            state,
            counts,
        }
    }

    /// Bytes carried from clients to the server so far.
    pub fn bytes_to_server(&self) -> u64 {
        self.counts.to_server.load(Ordering::Acquire)
    }

    /// Bytes carried from the server to clients so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.counts.to_client.load(Ordering::Acquire)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/`, for a client.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Drops every connection at once (both directions shut down), and
    /// refuses new ones until [`Proxy::restore`]: the client cannot come
    /// back before the test lets it.
    pub fn cut(&self) {
        let mut state = lock(&self.state);
        state.cut = true;
        for stream in state.streams.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again after a [`Proxy::cut`].
    pub fn restore(&self) {
        lock(&self.state).cut = false;
    }

    /// Sends new connections to `target` from now on (a load balancer
    /// that moved a client to another server); live ones stay.
    pub fn retarget(&self, target: SocketAddr) {
        lock(&self.state).target = target;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        lock(&self.state).stopped = true;
        // Wakes the accepting thread so it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept(listener: TcpListener, state: Arc<Mutex<State>>, counts: Arc<Counts>) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let (stopped, cut, target) = {
            let state = lock(&state);
            (state.stopped, state.cut, state.target)
        };
        if stopped {
            return;
        }
        if cut {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        if let Err(error) = forward(client, server, &state, &counts) {
            eprintln!("proxy: {error}");
        }
    }
}

/// Copies both ways on two threads, remembering the streams for a cut.
fn forward(
    client: TcpStream,
    server: TcpStream,
    state: &Mutex<State>,
    counts: &Arc<Counts>,
) -> io::Result<()> {
    let (client_reader, server_writer) = (client.try_clone()?, server.try_clone()?);
    let (server_reader, client_writer) = (server.try_clone()?, client.try_clone()?);
    {
        let mut state = lock(state);
        state.streams.push(client);
        state.streams.push(server);
    }
    let (up, down) = (counts.clone(), counts.clone());
    thread::spawn(move || copy(client_reader, server_writer, &up.to_server));
    thread::spawn(move || copy(server_reader, client_writer, &down.to_client));
    Ok(())
}

fn copy(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64) {
    use std::io::{Read, Write};
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        // Counted before the peer can see it.
        count.fetch_add(read as u64, Ordering::AcqRel);
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
