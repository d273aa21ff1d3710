//! The in-memory adapter: rooms of this server's sockets, and delivery to
//! them.
//!
//! A broadcast is encoded once; every recipient's connection gets a clone
//! that shares the buffers, queued under the connection's lock. Delivery
//! never waits on a recipient: each connection's buffer is bounded, and a
//! recipient whose buffer is full misses the packet and is reported in [`BroadcastError::Lagging`] (an
//! await here could deadlock two connections broadcasting to each other, and
//! an unbounded queue could grow without limit behind a client that does not
//! read). With the `volatile` flag such a recipient is skipped silently.

use std::sync::Mutex;

use engineio_proto::Sid;
use socketio_proto::rooms::{Room, Rooms};
use socketio_proto::{Packet, PacketKind};

use super::{Adapter, AdapterError, AdapterFuture, BroadcastOptions, LocalNamespace, RemoteSocket};
use crate::locks::lock;
use crate::server::{
    delivery, AckStream, BroadcastError, Delivery, NamespaceState, Payload, RoomEvent, SocketRef,
    Tally,
};

/// The room events of one change, when someone listens (`None`: nobody
/// does, and nothing is noted).
type Noted = Option<Vec<RoomEvent>>;

/// `id` joins `room`, noting a room created and the join.
fn join(all: &mut Rooms<Sid>, id: Sid, room: &Room, noted: &mut Noted) {
    let created = noted.is_some() && !all.contains_room(room);
    if all.join(id, room.clone()) {
        if let Some(events) = noted {
            if created {
                events.push(RoomEvent::Created(room.to_string()));
            }
            events.push(RoomEvent::Joined {
                room: room.to_string(),
                socket: id,
            });
        }
    }
}

/// `id` leaves `room`, noting the leave and a room gone empty.
fn leave(all: &mut Rooms<Sid>, id: Sid, room: &Room, noted: &mut Noted) {
    if all.leave(&id, room) {
        note_left(all, id, room, noted);
    }
}

/// Notes that `id` left `room`, and the room if it is now empty.
fn note_left(all: &Rooms<Sid>, id: Sid, room: &Room, noted: &mut Noted) {
    if let Some(events) = noted {
        events.push(RoomEvent::Left {
            room: room.to_string(),
            socket: id,
        });
        if !all.contains_room(room) {
            events.push(RoomEvent::Deleted(room.to_string()));
        }
    }
}

/// The default adapter: one server, rooms in memory (Node's in-memory
/// `Adapter`). Cluster adapters wrap one and call its `*_local` methods.
pub struct LocalAdapter {
    namespace: LocalNamespace,
    /// Each local socket and its rooms (its own id's room included).
    rooms: Mutex<Rooms<Sid>>,
}

impl LocalAdapter {
    /// The adapter of `namespace` on this server.
    pub fn new(namespace: LocalNamespace) -> LocalAdapter {
        LocalAdapter {
            namespace,
            rooms: Mutex::new(Rooms::new()),
        }
    }

    /// The namespace this adapter serves.
    pub fn namespace(&self) -> &LocalNamespace {
        &self.namespace
    }

    /// The local sockets an operation selects, in ascending id order, each
    /// once. Collected so that no lock is held while they are used.
    pub fn select_local(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        let Some(state) = self.namespace.state() else {
            return Vec::new();
        };
        let rooms = lock(&self.rooms);
        let ids = rooms.select(&opts.rooms, &opts.except);
        state.sockets_by_id(ids)
    }

    /// Delivers an EVENT to the selected local sockets (encoded once). With
    /// connection state recovery on, a non-volatile event is recorded first
    /// (even with no socket selected now: a recovering client may be away).
    pub fn broadcast_local(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        let Some(state) = self.namespace.state() else {
            return Ok(());
        };
        let volatile = opts.flags.volatile;
        if let (Some(recovery), PacketKind::Event, false) = (&state.recovery, packet.kind, volatile)
        {
            if let Some(data) = packet.data.take() {
                let recorded =
                    recovery.record(data, &packet.attachments, &opts.rooms, &opts.except);
                packet.data = Some(recorded);
            }
        }
        self.deliver(&state, packet, opts)
    }

    /// Encodes an EVENT once and queues it on each selected local socket.
    fn deliver(
        &self,
        state: &NamespaceState,
        packet: Packet,
        opts: &BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        let volatile = opts.flags.volatile;
        let targets = self.select_local(opts);
        if targets.is_empty() {
            return Ok(());
        }
        let encoded = state
            .handlers
            .parser
            .encode(&packet)
            .with_compress(opts.flags.compress);
        let mut lagging = Vec::new();
        let mut tally = Tally::default();
        for socket in &targets {
            if let Some(data) = &packet.data {
                socket.notify_outgoing(data, &packet.attachments);
            }
            let delivered = delivery(&socket.queue_encoded(&encoded, volatile));
            // A socket that left meanwhile is not lagging.
            if delivered == Delivery::Lagging {
                lagging.push(socket.id());
            }
            tally.add(delivered);
        }
        state.counters.delivered(&tally, true);
        if lagging.is_empty() {
            Ok(())
        } else {
            tracing::warn!(
                nsp = self.namespace.name(),
                count = lagging.len(),
                "broadcast skipped lagging sockets"
            );
            Err(BroadcastError::Lagging(lagging))
        }
    }

    /// Delivers an EVENT to the selected local sockets, as
    /// [`LocalAdapter::broadcast_local`] does but for an adapter that
    /// [keeps sessions](super::Adapter::keeps_sessions): nothing is recorded
    /// here, and with connection state recovery on, a non-volatile event
    /// carries `offset` (the adapter's own, such as a stream entry id) as
    /// its last argument. `None`: no offset (a local-only broadcast, or
    /// one the cluster did not take).
    pub fn broadcast_local_at(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
        offset: Option<&str>,
    ) -> Result<(), BroadcastError> {
        let Some(state) = self.namespace.state() else {
            return Ok(());
        };
        if let (true, Some(offset), PacketKind::Event, false) = (
            state.recovery.is_some(),
            offset,
            packet.kind,
            opts.flags.volatile,
        ) {
            if let Some(data) = &packet.data {
                if let Some(with_offset) = socketio_proto::recovery::with_offset(data, offset) {
                    packet.data = Some(engineio_proto::Str::from(with_offset));
                }
            }
        }
        self.deliver(&state, packet, opts)
    }

    /// Sends an EVENT asking each selected local socket for an ack; one
    /// answer per socket comes on the stream.
    pub fn broadcast_with_ack_local(&self, packet: Packet, opts: &BroadcastOptions) -> AckStream {
        let targets = self.select_local(opts);
        let mut stream = AckStream::empty();
        for socket in targets {
            if let Some(data) = &packet.data {
                socket.notify_outgoing(data, &packet.attachments);
            }
            stream.push(socket.request_ack(
                packet.clone(),
                opts.flags.timeout,
                opts.flags.compress,
            ));
        }
        stream
    }

    /// Snapshots of the selected local sockets.
    pub fn fetch_sockets_local(&self, opts: &BroadcastOptions) -> Vec<RemoteSocket> {
        self.select_local(opts)
            .iter()
            .map(RemoteSocket::of)
            .collect()
    }

    /// Makes the selected local sockets join `rooms`.
    pub fn add_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.change_selected(opts, rooms, join);
    }

    /// Makes the selected local sockets leave `rooms`.
    pub fn del_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.change_selected(opts, rooms, leave);
    }

    /// Applies `change` to each selected socket and room, then tells the
    /// room listeners.
    fn change_selected(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
        change: fn(&mut Rooms<Sid>, Sid, &Room, &mut Noted),
    ) {
        let mut noted = self.room_events();
        {
            let mut all = lock(&self.rooms);
            let selected: Vec<Sid> = all.select(&opts.rooms, &opts.except).cloned().collect();
            for id in selected {
                for room in rooms {
                    change(&mut all, id, room, &mut noted);
                }
            }
        }
        self.tell(noted);
    }

    /// An empty list to note room events in, when someone listens.
    fn room_events(&self) -> Noted {
        self.namespace
            .state()
            .filter(|state| state.has_room_listeners())
            .map(|_| Vec::new())
    }

    /// Gives the room listeners what changed, with no lock held.
    fn tell(&self, noted: Noted) {
        let (Some(events), Some(state)) = (noted, self.namespace.state()) else {
            return;
        };
        for event in &events {
            state.room_event(event);
        }
    }

    /// Disconnects the selected local sockets (`close`: their whole
    /// connections). Waits only for the commands to be queued.
    pub async fn disconnect_sockets_local(&self, opts: &BroadcastOptions, close: bool) {
        for socket in self.select_local(opts) {
            let _ = if close {
                socket.close_connection().await
            } else {
                socket.disconnect().await
            };
        }
    }

    /// Whether a local socket is in `room`.
    pub fn has_room(&self, room: &Room) -> bool {
        lock(&self.rooms).contains_room(room)
    }

    /// Whether socket `id` is one of this namespace's local sockets.
    pub fn has_socket(&self, id: Sid) -> bool {
        lock(&self.rooms).contains_socket(&id)
    }

    /// The rooms with a local socket in them.
    pub fn all_rooms_local(&self) -> Vec<Room> {
        lock(&self.rooms).all_rooms().cloned().collect()
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, id: Sid, rooms: &[Room]) {
        let mut noted = self.room_events();
        {
            let mut all = lock(&self.rooms);
            all.insert_socket(id);
            for room in rooms {
                join(&mut all, id, room, &mut noted);
            }
        }
        self.tell(noted);
    }

    fn del(&self, id: Sid, room: &Room) {
        let mut noted = self.room_events();
        leave(&mut lock(&self.rooms), id, room, &mut noted);
        self.tell(noted);
    }

    fn del_all(&self, id: Sid) {
        let mut noted = self.room_events();
        {
            let mut all = lock(&self.rooms);
            for room in all.remove_socket(&id).unwrap_or_default() {
                note_left(&all, id, &room, &mut noted);
            }
        }
        self.tell(noted);
    }

    fn socket_rooms(&self, id: Sid) -> Vec<Room> {
        lock(&self.rooms).rooms_of(&id).cloned().collect()
    }

    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<(), BroadcastError>> {
        let result = self.broadcast_local(packet, &opts);
        Box::pin(async move { result })
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<AckStream, BroadcastError>> {
        let stream = self.broadcast_with_ack_local(packet, &opts);
        Box::pin(async move { Ok(stream) })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<Vec<RemoteSocket>, AdapterError>> {
        let sockets = self.fetch_sockets_local(&opts);
        Box::pin(async move { Ok(sockets) })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.add_sockets_local(&opts, &rooms);
        Box::pin(async { Ok(()) })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.del_sockets_local(&opts, &rooms);
        Box::pin(async { Ok(()) })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.disconnect_sockets_local(&opts, close).await;
            Ok(())
        })
    }

    fn server_side_emit(
        &self,
        event: String,
        _payload: Payload,
        _ack_timeout: Option<std::time::Duration>,
    ) -> AdapterFuture<'_, Result<Vec<Payload>, AdapterError>> {
        // No other server: nobody to tell, no answer to wait for.
        tracing::debug!(
            nsp = self.namespace.name(),
            event,
            "server-side emit with a single server"
        );
        Box::pin(async { Ok(Vec::new()) })
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async { Ok(1) })
    }

    fn all_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, AdapterError>> {
        let rooms = self.all_rooms_local();
        Box::pin(async move { Ok(rooms) })
    }
}
