//! A deterministic world for the async driver (the `server_driver` target):
//! a single-threaded executor whose scheduling a seed decides, a virtual
//! clock that moves only when told, and in-memory byte pipes for
//! connections.
//!
//! The server runs on [`Sim`], a `socketio::Runtime` whose `clock()` reads
//! the virtual time and whose `sleep_until` fires when the clock is moved
//! past the deadline ([`Executor::advance`]). Nothing here reads the wall
//! clock, so one input always replays the same way (apart from random
//! socket ids, which no check depends on).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use socketio::runtime::{BoxFuture, Clock, Runtime, Sleep};

thread_local! {
    /// The origin of the virtual clock (any fixed instant will do).
    static ORIGIN: Instant = Instant::now();
    /// How far the virtual clock is from its origin. Only ever grows, also
    /// across runs, so a clock never goes back.
    static ELAPSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The virtual time now.
pub fn now() -> Instant {
    ORIGIN.with(|origin| *origin) + ELAPSED.with(Cell::get)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the executor and its runtime handles share.
#[derive(Default)]
struct World {
    /// Tasks woken and not yet polled, and whether each slot is queued.
    ready: Mutex<(Vec<usize>, Vec<bool>)>,
    /// Tasks spawned since the executor last looked.
    spawned: Mutex<Vec<BoxFuture>>,
    /// Armed timers by deadline (and a sequence number, for ties).
    timers: Mutex<BTreeMap<(Instant, u64), Waker>>,
    next_timer: AtomicU64,
}

impl World {
    fn wake(&self, task: usize) {
        let mut ready = lock(&self.ready);
        let (queue, queued) = &mut *ready;
        if queued.len() <= task {
            queued.resize(task + 1, false);
        }
        if !queued[task] {
            queued[task] = true;
            queue.push(task);
        }
    }
}

/// The runtime the server runs on: spawns onto the [`Executor`], sleeps on
/// its virtual clock.
#[derive(Clone)]
pub struct Sim {
    world: Arc<World>,
}

impl Runtime for Sim {
    fn spawn(&self, task: BoxFuture) {
        lock(&self.world.spawned).push(task);
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(SimSleep {
            world: Arc::downgrade(&self.world),
            key: (
                deadline,
                self.world.next_timer.fetch_add(1, Ordering::Relaxed),
            ),
            armed: false,
        })
    }

    fn clock(&self) -> Clock {
        Clock::with_source(now)
    }
}

/// A timer of the virtual clock: armed in the world's table while pending.
struct SimSleep {
    world: Weak<World>,
    key: (Instant, u64),
    armed: bool,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(world) = self.world.upgrade() else {
            // The world is gone: nothing will ever fire it.
            return Poll::Pending;
        };
        // Wakers replaced or removed are dropped after the lock is released.
        if now() >= self.key.0 {
            let removed = lock(&world.timers).remove(&self.key);
            drop(removed);
            self.armed = false;
            return Poll::Ready(());
        }
        let replaced = lock(&world.timers).insert(self.key, cx.waker().clone());
        drop(replaced);
        self.armed = true;
        Poll::Pending
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        if self.armed {
            if let Some(world) = self.world.upgrade() {
                // Taken out of the lock before it drops: a waker may hold
                // the last reference to something that takes the lock.
                let waker = lock(&world.timers).remove(&self.key);
                drop(waker);
            }
        }
    }
}

/// Wakes one task: queues its slot.
struct TaskWaker {
    world: Weak<World>,
    task: usize,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(world) = self.world.upgrade() {
            world.wake(self.task);
        }
    }
}

/// The tasks kept polling without the clock moving: a busy loop.
#[derive(Debug)]
pub struct Livelock;

/// Runs tasks one at a time, in an order drawn from a seed.
pub struct Executor {
    world: Arc<World>,
    /// Every task ever spawned, by slot; `None` once finished. Slots are
    /// never reused, so a stale waker of a finished task wakes nothing (a
    /// task that forgot to register its waker is never polled by luck).
    tasks: Vec<Option<BoxFuture>>,
    wakers: Vec<Waker>,
    rng: u64,
    live: usize,
}

impl Executor {
    /// An executor whose choices follow `seed`, and its runtime.
    pub fn new(seed: u64) -> (Executor, Sim) {
        let world = Arc::new(World::default());
        let sim = Sim {
            world: world.clone(),
        };
        let executor = Executor {
            world,
            tasks: Vec::new(),
            wakers: Vec::new(),
            rng: seed | 1,
            live: 0,
        };
        (executor, sim)
    }

    /// Tasks spawned and not finished.
    pub fn live_tasks(&self) -> usize {
        self.live + lock(&self.world.spawned).len()
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        lock(&self.world.timers).keys().next().map(|(at, _)| *at)
    }

    /// xorshift64: the scheduler's choices.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn adopt_spawned(&mut self) {
        let spawned = std::mem::take(&mut *lock(&self.world.spawned));
        for task in spawned {
            let slot = self.tasks.len();
            self.tasks.push(Some(task));
            self.wakers.push(Waker::from(Arc::new(TaskWaker {
                world: Arc::downgrade(&self.world),
                task: slot,
            })));
            self.live += 1;
            self.world.wake(slot);
        }
    }

    /// Polls ready tasks, in an order the seed picks, until none is ready;
    /// fails after `budget` polls.
    pub fn run(&mut self, budget: usize) -> Result<usize, Livelock> {
        let mut polls = 0;
        loop {
            self.adopt_spawned();
            let slot = {
                let pick = self.next_random();
                let mut ready = lock(&self.world.ready);
                let (queue, queued) = &mut *ready;
                if queue.is_empty() {
                    return Ok(polls);
                }
                let slot = queue.swap_remove((pick % queue.len() as u64) as usize);
                queued[slot] = false;
                slot
            };
            let Some(task) = self.tasks[slot].as_mut() else {
                // A waker of a finished task.
                continue;
            };
            polls += 1;
            if polls > budget {
                return Err(Livelock);
            }
            let mut cx = Context::from_waker(&self.wakers[slot]);
            if task.as_mut().poll(&mut cx).is_ready() {
                // Dropped outside any lock: dropping may spawn or wake.
                let finished = self.tasks[slot].take();
                drop(finished);
                self.live -= 1;
            }
        }
    }

    /// Moves the clock forward by `by` and wakes the timers now due.
    pub fn advance(&mut self, by: Duration) {
        ELAPSED.with(|elapsed| elapsed.set(elapsed.get() + by));
        let now = now();
        let due: Vec<Waker> = {
            let mut timers = lock(&self.world.timers);
            let later = timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut *timers, later)
                .into_values()
                .collect()
        };
        for waker in due {
            waker.wake();
        }
    }

    /// Moves the clock to the earliest armed timer (if any is armed) and
    /// wakes it; returns how far the clock moved.
    pub fn advance_to_next_timer(&mut self) -> Option<Duration> {
        let at = self.next_deadline()?;
        let by = at.saturating_duration_since(now());
        self.advance(by);
        Some(by)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Tasks may spawn others as they drop: drop until none is left.
        loop {
            let tasks: Vec<BoxFuture> = self.tasks.iter_mut().filter_map(Option::take).collect();
            let spawned = std::mem::take(&mut *lock(&self.world.spawned));
            if tasks.is_empty() && spawned.is_empty() {
                break;
            }
            drop(tasks);
            drop(spawned);
        }
        let timers = std::mem::take(&mut *lock(&self.world.timers));
        drop(timers);
    }
}

/// A gate that stalled handlers wait at until the harness opens it.
#[derive(Clone, Default)]
pub struct Gate {
    state: Arc<Mutex<(bool, Vec<Waker>)>>,
}

impl Gate {
    /// Lets every waiter through, now and later.
    pub fn open(&self) {
        let wakers = {
            let mut state = lock(&self.state);
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Completes once the gate is open.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut state = lock(&self.state);
            if state.0 {
                Poll::Ready(())
            } else {
                if !state.1.iter().any(|waker| waker.will_wake(cx.waker())) {
                    state.1.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// One direction of a connection: bounded bytes in flight.
struct Pipe {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// The writer is done: the reader sees the end once it has read all.
    shut: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    /// The server let go of its end (not only shut its writing down).
    server_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn new(capacity: usize) -> Arc<Mutex<Pipe>> {
        Arc::new(Mutex::new(Pipe {
            bytes: VecDeque::new(),
            capacity,
            shut: false,
            reader_gone: false,
            server_gone: false,
            reader: None,
            writer: None,
        }))
    }
}

/// Wakes what a pipe's change unblocks, after its lock is released.
fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The server's end of an in-memory connection (futures-io).
pub struct ServerEnd {
    incoming: Arc<Mutex<Pipe>>,
    outgoing: Arc<Mutex<Pipe>>,
}

/// The harness's end: written and read synchronously, between runs.
pub struct ClientEnd {
    outgoing: Arc<Mutex<Pipe>>,
    incoming: Arc<Mutex<Pipe>>,
}

/// A connection of `capacity` bytes each way.
pub fn connection(capacity: usize) -> (ClientEnd, ServerEnd) {
    let up = Pipe::new(capacity);
    let down = Pipe::new(capacity);
    (
        ClientEnd {
            outgoing: up.clone(),
            incoming: down.clone(),
        },
        ServerEnd {
            incoming: up,
            outgoing: down,
        },
    )
}

impl ClientEnd {
    /// Writes what fits of `bytes`; returns how many were taken. Nothing
    /// once the server stopped reading.
    pub fn write(&self, bytes: &[u8]) -> usize {
        let (taken, waker) = {
            let mut pipe = lock(&self.outgoing);
            if pipe.reader_gone || pipe.shut {
                return 0;
            }
            let taken = bytes.len().min(pipe.capacity - pipe.bytes.len());
            pipe.bytes.extend(&bytes[..taken]);
            (taken, if taken > 0 { pipe.reader.take() } else { None })
        };
        wake(waker);
        taken
    }

    /// Everything the server wrote so far.
    pub fn read(&self, into: &mut Vec<u8>) {
        let waker = {
            let mut pipe = lock(&self.incoming);
            if pipe.bytes.is_empty() {
                return;
            }
            into.extend(pipe.bytes.drain(..));
            pipe.writer.take()
        };
        wake(waker);
    }

    /// Whether the server let go of the connection (dropped its end, not
    /// only shut its writing down) and everything it wrote was read.
    pub fn closed_by_server(&self) -> bool {
        let pipe = lock(&self.incoming);
        pipe.server_gone && pipe.bytes.is_empty()
    }

    /// Whether the server still reads what is written.
    pub fn writable(&self) -> bool {
        let pipe = lock(&self.outgoing);
        !pipe.reader_gone && !pipe.shut
    }

    /// Half-closes: the server reads the end of the stream.
    pub fn shutdown(&self) {
        let waker = {
            let mut pipe = lock(&self.outgoing);
            pipe.shut = true;
            pipe.reader.take()
        };
        wake(waker);
    }
}

impl Drop for ClientEnd {
    /// A dropped client end is a reset: the server's reads end and its
    /// writes fail.
    fn drop(&mut self) {
        self.shutdown();
        let waker = {
            let mut pipe = lock(&self.incoming);
            pipe.reader_gone = true;
            pipe.bytes.clear();
            pipe.writer.take()
        };
        wake(waker);
    }
}

impl futures_io::AsyncRead for ServerEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let (read, waker) = {
            let mut pipe = lock(&self.incoming);
            if pipe.bytes.is_empty() {
                if pipe.shut {
                    return Poll::Ready(Ok(0));
                }
                pipe.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(pipe.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
                *slot = byte;
            }
            (n, pipe.writer.take())
        };
        wake(waker);
        Poll::Ready(Ok(read))
    }
}

impl futures_io::AsyncWrite for ServerEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let (written, waker) = {
            let mut pipe = lock(&self.outgoing);
            if pipe.reader_gone || pipe.shut {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let room = pipe.capacity - pipe.bytes.len();
            if room == 0 {
                pipe.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(room);
            pipe.bytes.extend(&buf[..n]);
            (n, pipe.reader.take())
        };
        wake(waker);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let waker = {
            let mut pipe = lock(&self.outgoing);
            pipe.shut = true;
            pipe.reader.take()
        };
        wake(waker);
        Poll::Ready(Ok(()))
    }
}

impl Drop for ServerEnd {
    /// The server let go of the connection: the client reads its end, and
    /// what the client writes goes nowhere.
    fn drop(&mut self) {
        let waker = {
            let mut pipe = lock(&self.outgoing);
            pipe.shut = true;
            pipe.server_gone = true;
            pipe.reader.take()
        };
        wake(waker);
        let mut pipe = lock(&self.incoming);
        pipe.reader_gone = true;
        pipe.bytes.clear();
    }
}
