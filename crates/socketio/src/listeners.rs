//! The event listeners of a socket, server's or client's: one registry and
//! one way to run them, so both sides start listeners as Node does.
//!
//! `S` is the socket handle a listener gets (`SocketRef` or
//! `ClientSocket`), `A` the ack sender of an event whose sender awaits an
//! answer.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::FutureExt;

use crate::payload::Payload;

/// Runs one handler of the application's (a listener, a middleware, a
/// connection, disconnect, upgrade or error handler), stopping a panic of
/// its here, whether it panics while made or while it runs: the panic is
/// logged and `None` returned, and what runs the handler goes on. So a bug
/// in one handler costs that handler only, as an exception thrown in a
/// Node handler does: the connection's other handlers run, and a socket
/// whose disconnect handler panics still leaves its namespace and rooms.
pub(crate) async fn guarded<T, F: Future<Output = T>>(
    what: &'static str,
    make: impl FnOnce() -> F,
) -> Option<T> {
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(make)) {
        Ok(run) => AssertUnwindSafe(run).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    if outcome.is_err() {
        tracing::error!(handler = what, "a handler panicked; the panic stops here");
    }
    outcome.ok()
}

/// What a listener returns.
pub(crate) type ListenerFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A listener of one event name.
pub(crate) type EventListener<S, A> =
    Arc<dyn Fn(S, Payload, Option<A>) -> ListenerFuture + Send + Sync>;

/// A listener of every event (Node's `onAny`), given the event's name.
pub(crate) type AnyListener<S> = Arc<dyn Fn(S, String, Payload) -> ListenerFuture + Send + Sync>;

/// Names one listener in its socket's registry, to remove it.
pub(crate) type ListenerId = u64;

/// Boxes an `on_any` closure.
pub(crate) fn any_listener<S, F, Fut>(handler: F) -> AnyListener<S>
where
    F: Fn(S, String, Payload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |socket, event, payload| Box::pin(handler(socket, event, payload)))
}

/// One event's listeners, in the order they were added, shared with the
/// occurrences that started them.
type EventList<S, A> = Arc<Vec<(ListenerId, EventListener<S, A>)>>;

/// The event listeners of one socket. An event's own list is shared
/// (`Arc`): an incoming event takes it with a reference count, not a copy;
/// adding a listener copies the list only while an event holds it.
pub(crate) struct EventListeners<S, A> {
    events: HashMap<String, EventList<S, A>>,
    any: Vec<AnyListener<S>>,
    next_id: ListenerId,
}

impl<S, A> Default for EventListeners<S, A> {
    fn default() -> Self {
        EventListeners {
            events: HashMap::new(),
            any: Vec::new(),
            next_id: 0,
        }
    }
}

/// The listeners one incoming event starts, taken out of the registry so
/// that no lock is held while they run.
pub(crate) struct Started<S, A> {
    any: Vec<AnyListener<S>>,
    own: Option<EventList<S, A>>,
}

impl<S, A> EventListeners<S, A> {
    /// Adds a listener of `event`, after those already there.
    pub(crate) fn on(&mut self, event: &str, listener: EventListener<S, A>) -> ListenerId {
        self.next_id += 1;
        let list = self.events.entry(event.to_owned()).or_default();
        Arc::make_mut(list).push((self.next_id, listener));
        self.next_id
    }

    /// The id the next listener added will get (for a listener that must
    /// know its own id, such as a `once` one).
    pub(crate) fn next_id(&self) -> ListenerId {
        self.next_id + 1
    }

    /// Removes one listener of `event`; an event already started keeps it.
    pub(crate) fn remove(&mut self, event: &str, id: ListenerId) {
        if let Some(list) = self.events.get_mut(event) {
            Arc::make_mut(list).retain(|(listener, _)| *listener != id);
            if list.is_empty() {
                self.events.remove(event);
            }
        }
    }

    /// Removes every listener of `event` (Node's `off(event)` without a
    /// function, `removeAllListeners(event)`).
    /// The removed listeners are returned so that the caller drops them
    /// (and what they captured) after releasing its lock.
    #[must_use]
    pub(crate) fn off(&mut self, event: &str) -> Option<EventList<S, A>> {
        self.events.remove(event)
    }

    /// Removes every listener of every event, `on_any` ones included;
    /// returns them, to be dropped outside the caller's lock.
    #[must_use]
    pub(crate) fn clear(&mut self) -> EventListeners<S, A> {
        EventListeners {
            events: std::mem::take(&mut self.events),
            any: std::mem::take(&mut self.any),
            next_id: self.next_id,
        }
    }

    /// Adds a listener of every event.
    pub(crate) fn on_any(&mut self, listener: AnyListener<S>) {
        self.any.push(listener);
    }

    /// Adds a listener of every event, before the others.
    pub(crate) fn prepend_any(&mut self, listener: AnyListener<S>) {
        self.any.insert(0, listener);
    }

    /// Removes every `on_any` listener (Node's `offAny()`); returns them,
    /// to be dropped outside the caller's lock.
    #[must_use]
    pub(crate) fn off_any(&mut self) -> Vec<AnyListener<S>> {
        std::mem::take(&mut self.any)
    }

    /// How many listeners `event` has (Node's `listenerCount`).
    pub(crate) fn count(&self, event: &str) -> usize {
        self.events.get(event).map_or(0, |list| list.len())
    }

    /// The listeners of `event` as they are now.
    pub(crate) fn of(&self, event: &str) -> Started<S, A> {
        Started {
            any: self.any.clone(),
            own: self.events.get(event).cloned(),
        }
    }
}

impl<S: Clone, A: Clone> Started<S, A> {
    /// Runs the listeners side by side: the `on_any` ones, then the
    /// event's own, each started in that order (as Node calls them), the
    /// next one starting where the previous one first awaits. Every own
    /// listener gets a clone of `ack`; the ack sender answers once.
    pub(crate) async fn run(self, socket: S, event: String, payload: Payload, ack: Option<A>) {
        let own: &[(ListenerId, EventListener<S, A>)] =
            self.own.as_deref().map_or(&[], |list| &list[..]);
        match (&self.any[..], own) {
            ([], []) => {}
            // The usual case: one listener, nothing to start beside it.
            ([], [(_, listener)]) => {
                guarded("event", || listener(socket, payload, ack)).await;
            }
            (any, own) => {
                let any = any.iter().map(|listener| {
                    let (socket, event, payload) = (socket.clone(), event.clone(), payload.clone());
                    Either::Left(guarded("any", move || listener(socket, event, payload)))
                });
                let own = own.iter().map(|(_, listener)| {
                    let (socket, payload, ack) = (socket.clone(), payload.clone(), ack.clone());
                    Either::Right(guarded("event", move || listener(socket, payload, ack)))
                });
                // `join_all` polls them in order: they start in order.
                futures_util::future::join_all(any.chain(own)).await;
            }
        }
    }
}
