//! The one way a protocol machine is shared between the task that drives
//! it and the handles the application holds, on the server and the client
//! alike (quinn's shape): a handle locks the machine for one short change
//! and wakes the task; the task carries out what the change produced. No
//! command travels through a channel, so a handle's errors are immediate
//! and it never waits for the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Context;

use engineio_proto::Instant;
use futures_util::task::AtomicWaker;

use crate::locks::lock;
use crate::runtime::Clock;

/// A machine, shared by its driving task and the application's handles.
pub(crate) struct MachineHandle<M> {
    machine: Mutex<M>,
    clock: Clock,
    /// Set by a handle's change; the task takes it.
    woken: AtomicBool,
    task: AtomicWaker,
    /// A sender waiting for room in the machine's buffer; woken each time
    /// the task has taken outputs.
    room: AtomicWaker,
}

impl<M> MachineHandle<M> {
    pub(crate) fn new(machine: M, clock: Clock) -> Self {
        MachineHandle {
            machine: Mutex::new(machine),
            clock,
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
            room: AtomicWaker::new(),
        }
    }

    /// Runs `change` on the machine at the current time, then wakes the
    /// task to carry out what it produced. Never waits for the task.
    pub(crate) fn apply<T>(&self, change: impl FnOnce(&mut M, Instant) -> T) -> T {
        let result = {
            let mut machine = lock(&self.machine);
            // Read under the lock, so the machine never sees time go back.
            let now = self.clock.now();
            change(&mut machine, now)
        };
        self.woken.store(true, Ordering::Release);
        self.task.wake();
        result
    }

    /// Reads the machine without waking the task.
    pub(crate) fn inspect<T>(&self, read: impl FnOnce(&M) -> T) -> T {
        read(&lock(&self.machine))
    }

    /// For the driving task: the machine, without waking the task itself.
    pub(crate) fn lock(&self) -> MutexGuard<'_, M> {
        lock(&self.machine)
    }

    /// The clock every change reads.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// For the driving task: whether a handle changed the machine since the
    /// last call; registers the task to be woken by the next change.
    pub(crate) fn poll_changed(&self, cx: &mut Context<'_>) -> bool {
        self.task.register(cx.waker());
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// For a sender waiting for room: be woken after the task next takes
    /// outputs (or when the machine is gone).
    pub(crate) fn register_room(&self, cx: &mut Context<'_>) {
        self.room.register(cx.waker());
    }

    /// For the driving task: outputs were taken, a sender may find room.
    pub(crate) fn wake_room(&self) {
        self.room.wake();
    }
}
