//! Is the `Adapter` trait really cluster-shaped? Two `SocketIo` servers in
//! one process, joined by an in-memory "bus" adapter written here (outside
//! the `socketio` crate, as a Redis adapter would be), must behave as one
//! cluster toward the official JavaScript client (`interop/cluster.mjs`).
//!
//! The bus stands in for a broker: each server's adapter of a namespace is
//! registered under the namespace's name, and an operation reaches the
//! peers by calling their `LocalAdapter::*_local` methods, exactly what a
//! broker subscriber would do on receiving the request. Snapshots of remote
//! sockets lose their `SocketRef`, as they would over the wire.

use suite::cluster::{run_on_pair, start_server, Server, SCENARIOS};

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

// Everything an adapter names comes from `socketio::adapter`: an adapter
// crate depends on `socketio` alone.
use futures_util::StreamExt;
use socketio::adapter::{
    oneshot, Adapter, AdapterError, AdapterFactory, AdapterFuture, BroadcastOptions, LocalAdapter,
    LocalNamespace, Packet, RemoteSocket, Room, Sid,
};
use socketio::{AckStream, BroadcastError, Payload, ServerAck};
use suite::{within_for, TestRuntime};

/// The in-process broker: every live adapter, by namespace name. Held
/// weakly, so a dropped server leaves the bus on its own.
#[derive(Default)]
struct Bus {
    members: Mutex<HashMap<String, Vec<Weak<BusAdapter>>>>,
}

impl Bus {
    fn join(&self, adapter: &Arc<BusAdapter>) {
        let name = adapter.local.namespace().name().to_owned();
        let mut members = self.members.lock().unwrap();
        members
            .entry(name)
            .or_default()
            .push(Arc::downgrade(adapter));
    }

    fn leave(&self, adapter: &BusAdapter) {
        let mut members = self.members.lock().unwrap();
        if let Some(list) = members.get_mut(adapter.local.namespace().name()) {
            list.retain(|member| !std::ptr::eq(member.as_ptr(), adapter));
        }
    }

    /// The live adapters of `nsp`, this server's included. Cloned out so
    /// that the lock is never held while an operation runs (or awaits).
    fn members(&self, nsp: &str) -> Vec<Arc<BusAdapter>> {
        let mut members = self.members.lock().unwrap();
        let Some(list) = members.get_mut(nsp) else {
            return Vec::new();
        };
        list.retain(|member| member.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }
}

/// One server's adapter of one namespace: a `LocalAdapter` for this
/// server's sockets, plus the bus for the others'.
struct BusAdapter {
    local: LocalAdapter,
    bus: Arc<Bus>,
}

impl BusAdapter {
    /// The other servers' adapters of this namespace; none when the
    /// operation is flagged `local`.
    fn peers(&self, opts: &BroadcastOptions) -> Vec<Arc<BusAdapter>> {
        if opts.flags.local {
            return Vec::new();
        }
        let mut members = self.bus.members(self.local.namespace().name());
        members.retain(|member| !std::ptr::eq(Arc::as_ptr(member), self));
        members
    }
}

impl Adapter for BusAdapter {
    // Membership is local state, as in Node: never forwarded.
    fn add_all(&self, id: Sid, rooms: &[Room]) {
        self.local.add_all(id, rooms);
    }

    fn del(&self, id: Sid, room: &Room) {
        self.local.del(id, room);
    }

    fn del_all(&self, id: Sid) {
        self.local.del_all(id);
    }

    fn socket_rooms(&self, id: Sid) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<(), BroadcastError>> {
        // Every server delivers to its own sockets; laggards of all of them
        // are reported together, and every other socket still gets it.
        let mut lagging = Vec::new();
        let mut first_error = None;
        let local = self.local.broadcast_local(packet.clone(), &opts);
        let remote = self
            .peers(&opts)
            .into_iter()
            .map(|peer| peer.local.broadcast_local(packet.clone(), &opts));
        for outcome in std::iter::once(local).chain(remote) {
            match outcome {
                Ok(()) => {}
                Err(BroadcastError::Lagging(ids)) => lagging.extend(ids),
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        let result = match first_error {
            Some(error) => Err(error),
            None if lagging.is_empty() => Ok(()),
            None => Err(BroadcastError::Lagging(lagging)),
        };
        Box::pin(async move { result })
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<AckStream, BroadcastError>> {
        let mut answers = self.local.broadcast_with_ack_local(packet.clone(), &opts);
        for peer in self.peers(&opts) {
            answers.merge(peer.local.broadcast_with_ack_local(packet.clone(), &opts));
        }
        Box::pin(async move { Ok(answers) })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<Vec<RemoteSocket>, AdapterError>> {
        let mut sockets = self.local.fetch_sockets_local(&opts);
        for peer in self.peers(&opts) {
            // What would cross the wire: id, namespace, rooms and data.
            let remote = peer.local.fetch_sockets_local(&opts).into_iter();
            sockets.extend(remote.map(|s| RemoteSocket::remote(s.id, s.nsp, s.rooms, s.data)));
        }
        Box::pin(async move { Ok(sockets) })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets_local(&opts, &rooms);
        for peer in self.peers(&opts) {
            peer.local.add_sockets_local(&opts, &rooms);
        }
        Box::pin(async { Ok(()) })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets_local(&opts, &rooms);
        for peer in self.peers(&opts) {
            peer.local.del_sockets_local(&opts, &rooms);
        }
        Box::pin(async { Ok(()) })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        let peers = self.peers(&opts);
        Box::pin(async move {
            self.local.disconnect_sockets_local(&opts, close).await;
            for peer in peers {
                peer.local.disconnect_sockets_local(&opts, close).await;
            }
            Ok(())
        })
    }

    fn server_side_emit(
        &self,
        event: String,
        payload: Payload,
        ack_timeout: Option<Duration>,
    ) -> AdapterFuture<'_, Result<Vec<Payload>, AdapterError>> {
        let peers = self.peers(&BroadcastOptions::all());
        Box::pin(async move {
            let mut answers = Vec::new();
            for peer in peers {
                let namespace: LocalNamespace = peer.local.namespace().clone();
                let (reply, answer) = oneshot::channel();
                let reply = ack_timeout.map(|_| reply);
                let (event, payload) = (event.clone(), payload.clone());
                // The peer's handlers run in a task of their own, as they
                // would on the peer: never in (nor blocking) the emitter's.
                // Spawned on the server's runtime, whichever it is.
                let runtime = namespace.runtime().clone();
                runtime.spawn(Box::pin(async move {
                    namespace.deliver_server_event(&event, payload, reply).await;
                }));
                answers.push(answer);
            }
            let Some(timeout) = ack_timeout else {
                return Ok(Vec::new());
            };
            // A dropped sender (no handler answered) is a peer that will
            // never answer: reported as the timeout it would end in.
            let all = futures_util::future::join_all(answers);
            let deadline = self.local.namespace().sleep(timeout);
            match futures_util::future::select(all, deadline).await {
                futures_util::future::Either::Left((answers, _)) => answers
                    .into_iter()
                    .map(|answer| answer.map_err(|_| AdapterError::Timeout))
                    .collect(),
                futures_util::future::Either::Right(_) => Err(AdapterError::Timeout),
            }
        })
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, AdapterError>> {
        let count = self.bus.members(self.local.namespace().name()).len();
        Box::pin(async move { Ok(count) })
    }

    fn all_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, AdapterError>> {
        let mut rooms: BTreeSet<Room> = self.local.all_rooms_local().into_iter().collect();
        for peer in self.peers(&BroadcastOptions::all()) {
            rooms.extend(peer.local.all_rooms_local());
        }
        Box::pin(async move { Ok(rooms.into_iter().collect()) })
    }

    fn close(&self) -> AdapterFuture<'_, ()> {
        self.bus.leave(self);
        Box::pin(async {})
    }
}

/// One server's factory: each namespace's adapter joins the shared bus.
struct BusFactory {
    bus: Arc<Bus>,
}

impl AdapterFactory for BusFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let adapter = Arc::new(BusAdapter {
            local: LocalAdapter::new(namespace),
            bus: self.bus.clone(),
        });
        self.bus.join(&adapter);
        adapter
    }
}

/// Two fresh servers on a fresh bus, so no scenario sees another's sockets.
async fn cluster<R: TestRuntime>(rt: R) -> (Server<R>, Server<R>) {
    let bus = Arc::new(Bus::default());
    let a = start_server(rt, "A", Arc::new(BusFactory { bus: bus.clone() })).await;
    let b = start_server(rt, "B", Arc::new(BusFactory { bus })).await;
    (a, b)
}

async fn two_servers_act_as_one_cluster_for_the_official_js_client<R: TestRuntime>(rt: R) {
    let mut failures = Vec::new();
    for (scenario, transport) in SCENARIOS {
        let (a, b) = cluster(rt).await;
        failures.extend(run_on_pair(&a, &b, scenario, transport).await);
        a.io.close().await;
        b.io.close().await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Server-side events without a client: fire-and-forget delivery, a peer
/// that keeps the ack without answering, and a server leaving the bus.
async fn server_side_emit_times_out_and_servers_leave_the_bus<R: TestRuntime>(rt: R) {
    let (a, b) = cluster(rt).await;
    let (seen_tx, mut seen_rx) = futures_channel::mpsc::unbounded();
    b.io.of("/").on_server_event("note", move |payload, ack| {
        let seen = seen_tx.clone();
        async move {
            assert!(ack.is_none(), "no ack was asked for");
            let _ = seen.unbounded_send(payload.first::<String>().unwrap());
        }
    });
    // Held, never answered: B is alive but silent.
    let held: Arc<Mutex<Vec<ServerAck>>> = Arc::default();
    let keep = held.clone();
    b.io.of("/").on_server_event("silent", move |_, ack| {
        keep.lock().unwrap().extend(ack);
        async {}
    });
    let main = a.io.of("/");
    main.server_side_emit("note", Payload::single("hello").unwrap())
        .await
        .unwrap();
    let seen = within_for(Duration::from_secs(5), "the note", seen_rx.next()).await;
    assert_eq!(seen.as_deref(), Some("hello"));
    let silent = main
        .server_side_emit_with_ack("silent", Payload::empty(), Duration::from_millis(200))
        .await;
    assert!(matches!(silent, Err(AdapterError::Timeout)), "{silent:?}");
    assert_eq!(held.lock().unwrap().len(), 1, "B got the silent event");
    assert_eq!(main.server_count().await.unwrap(), 2);
    // B leaves: A is alone again, and its emits wait for nobody.
    b.io.close().await;
    assert_eq!(main.server_count().await.unwrap(), 1);
    let answers = main
        .server_side_emit_with_ack("silent", Payload::empty(), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(answers.is_empty());
    a.io.close().await;
}

suite::on_each_runtime!(
    two_servers_act_as_one_cluster_for_the_official_js_client,
    server_side_emit_times_out_and_servers_leave_the_bus,
);
