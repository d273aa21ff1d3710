//! One namespace's adapter: the local half is a [`LocalAdapter`], the rest
//! goes through Redis as Node's adapters send it, in the classic format or
//! the sharded one ([`Dialect`]).
//!
//! Requests wait for one answer per other server, counted as Node counts
//! them: the subscribers of the channel every server of the namespace
//! subscribes to (`PUBSUB NUMSUB` / `SHARDNUMSUB`), minus this one. Answers
//! arrive on the subscriber and are handed to the waiting request by id,
//! through a bounded queue: a flood of answers is dropped (and logged), not
//! buffered.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use socketio::adapter::{
    node_handshake, oneshot, AckAnswer, AckStream, Adapter, AdapterError, AdapterFuture,
    BroadcastError, BroadcastOptions, LocalAdapter, LocalNamespace, MissedPacket, Packet, Payload,
    RemoteSocket, Restored, Room, Session, Sid, Str,
};
use socketio::runtime::DynRuntime;

use crate::broker::Broker;
use crate::codec::CodecError;
use crate::dialect::{Dialect, Incoming, Outgoing};
use crate::push_subscriber::Channel;
use crate::resume::Gate;
use crate::wire::{self, Request, Response, SocketDetails};
use crate::{lock, sharded_wire, streams_wire, Format};
use redis::streams::StreamRangeReply;

/// A namespace's adapter on Redis (Node's `createAdapter` or
/// `createShardedAdapter` format, as its factory says).
pub struct RedisAdapter {
    local: LocalAdapter,
    broker: Arc<Broker>,
    wire: Dialect,
    /// Requests of this adapter waiting for answers, by request id.
    waiting: Arc<Mutex<WaitingRequests>>,
    /// Sharded, dynamic modes: the rooms whose channels this adapter
    /// subscribes to (those that exist here and qualify).
    room_channels: Mutex<BTreeSet<Room>>,
    /// Streams: every delivery of an entry goes through it, so that a
    /// session restored meanwhile gets each entry once and in order.
    gate: Gate,
}

type WaitingRequests = HashMap<String, mpsc::Sender<Response>>;

impl RedisAdapter {
    pub(crate) fn new(namespace: LocalNamespace, broker: Arc<Broker>) -> RedisAdapter {
        let config = &broker.config;
        let nsp = namespace.name();
        let wire = match &broker.format {
            Format::Sharded(mode) => Dialect::sharded(&config.key, nsp, *mode),
            Format::Classic => Dialect::classic(
                &config.key,
                nsp,
                config.publish_on_specific_response_channel,
            ),
            Format::Streams(streams) => {
                let stream =
                    streams_wire::stream_name(&streams.stream_name, streams.stream_count, nsp);
                Dialect::streams(&config.key, nsp, stream, streams.sharded_pubsub)
            }
        };
        // Streams: the latest entries are kept for restores (as many as the
        // stream keeps).
        let keep = match &broker.format {
            Format::Streams(streams) => streams.max_len,
            _ => 0,
        };
        RedisAdapter {
            local: LocalAdapter::new(namespace),
            broker,
            wire,
            waiting: Arc::default(),
            room_channels: Mutex::default(),
            gate: Gate::new(keep),
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn DynRuntime> {
        self.local.namespace().runtime()
    }

    pub(crate) fn dialect(&self) -> &Dialect {
        &self.wire
    }

    /// Every channel this adapter subscribes to now, for the RESP3
    /// subscriber. Sharded: its fixed channels and its rooms'. Classic (on
    /// a cluster): the broadcast pattern first, so that a server counted on
    /// the request channel (`PUBSUB NUMSUB`) already hears broadcasts,
    /// then its fixed channels.
    pub(crate) fn push_channels(&self) -> Vec<Channel> {
        let (fixed, pattern) = self.wire.fixed_channels();
        if self.wire.subscription_mode().is_none() {
            return pattern
                .map(Channel::Pattern)
                .into_iter()
                .chain(fixed.into_iter().map(Channel::Exact))
                .collect();
        }
        if !self.wire.shard_channels() {
            // The Streams format over plain pub/sub, on a cluster.
            return fixed.into_iter().map(Channel::Exact).collect();
        }
        let rooms = lock(&self.room_channels)
            .iter()
            .map(|room| self.wire.room_channel(room))
            .collect::<Vec<_>>();
        fixed.into_iter().chain(rooms).map(Channel::Shard).collect()
    }

    /// Sharded, dynamic modes: after a membership change touching `rooms`,
    /// (un)subscribes the channels of those that appeared or vanished
    /// here (Node's `create-room` / `delete-room` handlers).
    fn rooms_changed<'a>(&self, rooms: impl IntoIterator<Item = &'a Room>) {
        let Some(mode) = self.wire.subscription_mode() else {
            return;
        };
        let mut subscribed = lock(&self.room_channels);
        for room in rooms {
            let private = Sid::parse(room.as_str()).is_ok_and(|id| self.local.has_socket(id));
            let wanted = self.local.has_room(room) && mode.subscribes_room(private);
            let changed = if wanted {
                subscribed.insert(room.clone())
            } else {
                subscribed.remove(room)
            };
            if changed {
                self.broker
                    .subscription(Channel::Shard(self.wire.room_channel(room)), wanted);
            }
        }
    }

    /// The name of this adapter's namespace.
    pub(crate) fn nsp(&self) -> &str {
        self.local.namespace().name()
    }

    /// Streams: an entry of this namespace's stream, `id` its offset.
    /// This adapter's own entries are skipped (it delivered them when it
    /// added them).
    pub(crate) fn on_stream_entry(self: &Arc<Self>, id: &str, fields: &[(String, Vec<u8>)]) {
        let envelope = match streams_wire::decode_entry(fields) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, id, "redis adapter: ignored a stream entry it cannot decode");
                return;
            }
        };
        if envelope.uid == self.wire.uid || envelope.nsp != self.nsp() {
            return;
        }
        match envelope.message {
            sharded_wire::Message::Broadcast(broadcast) => {
                let delivered = self.gate.deliver(
                    id,
                    broadcast.packet,
                    &broadcast.opts,
                    true,
                    |packet, opts| self.local.broadcast_local_at(packet, opts, Some(id)),
                );
                if let Err(error) = delivered {
                    tracing::debug!(%error, "redis adapter: remote broadcast");
                }
            }
            sharded_wire::Message::Request(request) => self.on_request(request),
            sharded_wire::Message::Response(_) | sharded_wire::Message::Other(_) => {}
        }
    }

    /// A message from the subscriber, on one of this adapter's channels.
    /// Undecodable messages are logged and dropped: one bad publisher must
    /// not stop the others' traffic.
    pub(crate) fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        match self.wire.decode(channel, payload) {
            Ok(Incoming::Broadcast(broadcast)) => {
                if let Err(error) = self
                    .local
                    .broadcast_local(broadcast.packet, &broadcast.opts)
                {
                    tracing::debug!(%error, "redis adapter: remote broadcast");
                }
            }
            Ok(Incoming::Request(request)) => self.on_request(request),
            Ok(Incoming::Response(response)) => self.on_response(response),
            Ok(Incoming::Ignored) => {}
            Err(error) => tracing::warn!(
                %error,
                channel,
                message = %wire::preview(payload),
                "redis adapter: ignored a message it cannot decode"
            ),
        }
    }

    fn on_response(&self, response: Response) {
        let mut waiting = lock(&self.waiting);
        let Some(queue) = waiting.get_mut(response.request_id()) else {
            // Another server's request, or one that has timed out.
            return;
        };
        if queue.try_send(response).is_err() {
            tracing::warn!("redis adapter: dropped an answer its request has no room for");
        }
    }

    /// Another server's request (the dialect dropped this adapter's own).
    fn on_request(self: &Arc<Self>, request: Request) {
        match request {
            Request::AllRooms { uid, request_id } => {
                let rooms = self.local.all_rooms_local();
                self.respond(self.wire.rooms_response(&uid, &request_id, &rooms));
            }
            Request::Fetch {
                uid,
                request_id,
                opts,
            } => {
                let sockets: Vec<SocketDetails> = self
                    .local
                    .fetch_sockets_local(&opts)
                    .into_iter()
                    .map(|s| SocketDetails {
                        id: s.id.to_string(),
                        handshake: s.local.as_ref().map_or(s.handshake, node_handshake),
                        rooms: s.rooms,
                        data: s.data,
                    })
                    .collect();
                self.respond(self.wire.sockets_response(&uid, &request_id, &sockets));
            }
            Request::Rooms {
                join, opts, rooms, ..
            } => {
                if join {
                    self.local.add_sockets_local(&opts, &rooms);
                } else {
                    self.local.del_sockets_local(&opts, &rooms);
                }
                self.rooms_changed(&rooms);
            }
            Request::Disconnect { opts, close, .. } => {
                let adapter = self.clone();
                self.runtime().spawn(Box::pin(async move {
                    adapter.local.disconnect_sockets_local(&opts, close).await;
                }));
            }
            Request::ServerSideEmit {
                uid,
                request_id,
                event,
                args,
            } => self.on_server_side_emit(uid, request_id, event, args),
            Request::BroadcastWithAck {
                uid,
                request_id,
                packet,
                opts,
            } => self.on_broadcast_with_ack(uid, request_id, packet, &opts),
        }
    }

    /// Runs the server-side handlers in a task of their own; the first
    /// answer goes back when one was asked for.
    fn on_server_side_emit(
        self: &Arc<Self>,
        requester: String,
        request_id: Option<String>,
        event: String,
        args: Payload,
    ) {
        let adapter = self.clone();
        self.runtime().spawn(Box::pin(async move {
            let namespace = adapter.local.namespace().clone();
            let Some(request_id) = request_id else {
                namespace.deliver_server_event(&event, args, None).await;
                return;
            };
            let (reply, answer) = oneshot::channel();
            namespace
                .deliver_server_event(&event, args, Some(reply))
                .await;
            let Ok(answer) = answer.await else { return };
            let wire = &adapter.wire;
            match wire.server_side_emit_response(&requester, &request_id, &answer) {
                Ok(response) => {
                    let _ = adapter.publish(response).await;
                }
                Err(error) => tracing::warn!(%error, "redis adapter: an answer cannot be encoded"),
            }
        }));
    }

    /// Sends the EVENT to the selected local sockets, tells the requester
    /// how many, then relays each ack as it comes.
    fn on_broadcast_with_ack(
        self: &Arc<Self>,
        requester: String,
        request_id: String,
        packet: Packet,
        opts: &BroadcastOptions,
    ) {
        let mut answers = self.local.broadcast_with_ack_local(packet, opts);
        let count = answers.local_len();
        let adapter = self.clone();
        self.runtime().spawn(Box::pin(async move {
            let wire = &adapter.wire;
            let count_message = wire.client_count_response(&requester, &request_id, count);
            if adapter.publish(count_message).await.is_err() {
                return;
            }
            while let Some((sid, answer)) = answers.next().await {
                // Node relays answers only; timeouts are the requester's.
                let Ok(answer) = answer else { continue };
                match wire.ack_response(&requester, &request_id, sid.as_str(), &answer) {
                    Ok(message) => {
                        let _ = adapter.publish(message).await;
                    }
                    Err(error) => tracing::warn!(%error, "redis adapter: an ack cannot be encoded"),
                }
            }
        }));
    }

    /// Publishes a message in the dialect's way (`PUBLISH` / `SPUBLISH`;
    /// with the Streams format, `XADD` for what the stream keeps, and
    /// msgpack on pub/sub for the rest).
    async fn publish(&self, (channel, message): Outgoing) -> Result<(), AdapterError> {
        let command = self.wire.publish_command();
        let Some(stream) = self.wire.stream() else {
            return self.broker.publish(command, &channel, message).await;
        };
        match streams_wire::route(message).map_err(codec_error)? {
            streams_wire::Route::Stream(fields) => {
                self.broker.xadd(stream, &fields).await.map(|_| ())
            }
            streams_wire::Route::PubSub(message) => {
                self.broker.publish(command, &channel, message).await
            }
        }
    }

    /// Streams: adds a broadcast to the stream, then delivers it here with
    /// the entry's id as its offset (as Node's `ClusterAdapter` does). If
    /// Redis does not take it, it is still delivered here, without one.
    async fn broadcast_through_stream(
        &self,
        stream: &str,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        // The entry's fields straight from the packet: encoded once.
        let fields = sharded_wire::broadcast_data(None, &packet, &opts).and_then(|data| {
            let nsp = packet.nsp.as_str();
            let (uid, attachments) = (&self.wire.uid, &packet.attachments);
            streams_wire::entry(
                uid,
                nsp,
                sharded_wire::kind::BROADCAST,
                Some(&data),
                attachments,
            )
        });
        let added = match fields {
            Ok(fields) => self.broker.xadd(stream, &fields).await,
            Err(error) => Err(codec_error(error)),
        };
        match added {
            Ok(id) => self
                .gate
                .deliver(&id, packet, &opts, false, |packet, opts| {
                    self.local.broadcast_local_at(packet, opts, Some(&id))
                }),
            Err(error) => {
                self.local.broadcast_local_at(packet, &opts, None)?;
                Err(BroadcastError::Adapter(error))
            }
        }
    }

    /// Streams: the session kept under `pid` (taken: a session is restored
    /// once), and every entry after `offset` meant for it. `None` when the
    /// session or the offset is gone.
    async fn restore_from_stream(
        &self,
        stream: &str,
        pid: &str,
        offset: &str,
    ) -> Result<Option<Restored<serde_json::Value>>, AdapterError> {
        let Some(streams) = self.broker.streams().cloned() else {
            return Ok(None);
        };
        if !streams_wire::is_entry_id(offset) {
            return Ok(None);
        }
        let key = format!("{}{pid}", streams.session_key_prefix);
        let mut take = redis::pipe();
        take.atomic().get(&key).del(&key).ignore();
        let (kept,): (Option<Vec<u8>>,) = self.broker.query_pipe("GET/DEL session", &take).await?;
        let Some(kept) = kept else {
            return Ok(None);
        };
        let session = streams_wire::decode_session(&kept).map_err(codec_error)?;
        // From here every delivery is kept for the session too, until
        // `resume` starts its socket (see `resume.rs`). A recent offset is
        // restored from what this server delivered, an older one from Redis.
        let limit = streams.max_len;
        let missed = match self.gate.restore_recent(pid, &session.rooms, offset, limit) {
            Some(missed) => missed,
            None => {
                self.gate.begin(pid, &session.rooms, limit);
                let replayed = self.replay(stream, &streams, &session, offset).await;
                match &replayed {
                    Ok(Some((_, through))) => self.gate.replayed(pid, through),
                    _ => self.gate.abandon(pid),
                }
                let Some((missed, _)) = replayed? else {
                    return Ok(None);
                };
                missed
            }
        };
        let Session {
            sid,
            pid,
            rooms,
            data,
        } = session;
        Ok(Some(Restored::new(sid, pid, rooms, data, missed)))
    }

    /// Streams: the entries after `offset` meant for `session`, and the
    /// id of the last entry read (`offset` if none); `None` when `offset`
    /// is no longer in the stream.
    async fn replay(
        &self,
        stream: &str,
        streams: &crate::StreamsConfig,
        session: &Session,
        offset: &str,
    ) -> Result<Option<(Vec<MissedPacket>, String)>, AdapterError> {
        let mut at = redis::cmd("XRANGE");
        at.arg(stream).arg(offset).arg(offset);
        let found: StreamRangeReply = self.broker.query("XRANGE", &at).await?;
        if found.ids.is_empty() {
            return Ok(None);
        }
        let mut missed = Vec::new();
        let mut from = offset.to_owned();
        // The stream holds about `max_len` entries: reading twice that
        // many ends even while others keep adding.
        let mut budget = streams.max_len.saturating_mul(2).max(streams.read_count);
        while budget > 0 {
            let count = streams.read_count.min(budget).max(1);
            let mut range = redis::cmd("XRANGE");
            range
                .arg(stream)
                .arg(streams_wire::next_id(&from))
                .arg("+")
                .arg("COUNT")
                .arg(count);
            let page: StreamRangeReply = self.broker.query("XRANGE", &range).await?;
            let read = page.ids.len();
            budget = budget.saturating_sub(read);
            for entry in page.ids {
                from = entry.id.clone();
                let fields = crate::stream_reader::fields(entry.map);
                let Ok(envelope) = streams_wire::decode_entry(&fields) else {
                    continue;
                };
                if envelope.nsp != self.nsp() {
                    continue;
                }
                let sharded_wire::Message::Broadcast(broadcast) = envelope.message else {
                    continue;
                };
                if !streams_wire::meant_for(&session.rooms, &broadcast.opts) {
                    continue;
                }
                let Some(data) = &broadcast.packet.data else {
                    continue;
                };
                if let Some(with_offset) = socketio::adapter::with_offset(data, &entry.id) {
                    let data = Str::from(with_offset);
                    missed.push(MissedPacket::new(data, broadcast.packet.attachments));
                }
            }
            if read < count {
                break;
            }
        }
        Ok(Some((missed, from)))
    }

    /// Publishes a response in a task (the subscriber never waits). With
    /// the sharded format, once the room subscriptions asked for so far
    /// are in effect: a requester that has our answer knows that the
    /// changes it made before (a remote join, say) reach us fully, room
    /// channel included. With the Streams format, once this server has
    /// read what the stream held when the request came: a join added to
    /// the stream before the request has been applied here.
    fn respond(self: &Arc<Self>, response: Outgoing) {
        let adapter = self.clone();
        self.runtime().spawn(Box::pin(async move {
            if let Some(stream) = adapter.wire.stream() {
                adapter.broker.caught_up(stream, adapter.runtime()).await;
            } else if adapter.wire.subscription_mode().is_some() {
                if let Err(error) = adapter.broker.subscriptions_settled().await {
                    tracing::debug!(%error, "redis adapter: answering before subscriptions settled");
                }
            }
            let _ = adapter.publish(response).await;
        }));
    }

    /// How many other servers serve this namespace.
    async fn other_servers(&self) -> Result<usize, AdapterError> {
        let (subcommand, channel) = self.wire.count_query();
        let all = self.broker.subscribers(subcommand, channel).await?;
        Ok(all.saturating_sub(1))
    }

    /// Registers a request's answer queue; it is removed when the returned
    /// guard drops.
    fn wait_for(&self, request_id: &str, capacity: usize) -> Waiting {
        let (queue, answers) = mpsc::channel(capacity);
        lock(&self.waiting).insert(request_id.to_owned(), queue);
        Waiting {
            waiting: self.waiting.clone(),
            request_id: request_id.to_owned(),
            answers,
        }
    }

    /// Publishes a request and collects `expected` answers that `keep`
    /// accepts, within the requests timeout.
    ///
    /// Each request is measured through the `metrics` facade (a no-op
    /// without a recorder): `socketio_adapter_requests_total{kind,
    /// outcome}` and `socketio_adapter_request_seconds{kind}`.
    async fn request<T>(
        &self,
        kind: &'static str,
        message: Outgoing,
        request_id: &str,
        expected: usize,
        keep: impl FnMut(Response) -> Option<T>,
    ) -> Result<Vec<T>, AdapterError> {
        let started = std::time::Instant::now();
        let answers = self.collect(message, request_id, expected, keep).await;
        let outcome = match &answers {
            Ok(_) => "ok",
            Err(AdapterError::Timeout) => "timeout",
            Err(_) => "error",
        };
        metrics::counter!("socketio_adapter_requests_total", "kind" => kind, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("socketio_adapter_request_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        answers
    }

    async fn collect<T>(
        &self,
        message: Outgoing,
        request_id: &str,
        expected: usize,
        mut keep: impl FnMut(Response) -> Option<T>,
    ) -> Result<Vec<T>, AdapterError> {
        let mut waiting = self.wait_for(request_id, expected.max(1) * 2);
        self.publish(message).await?;
        let mut got = Vec::with_capacity(expected);
        let mut deadline = self
            .local
            .namespace()
            .sleep(self.broker.config.requests_timeout);
        while got.len() < expected {
            match select(waiting.answers.next(), deadline).await {
                Either::Left((Some(answer), rest)) => {
                    deadline = rest;
                    got.extend(keep(answer));
                }
                Either::Left((None, _)) | Either::Right(_) => return Err(AdapterError::Timeout),
            }
        }
        Ok(got)
    }
}

/// A request's queue of answers, unregistered on drop.
struct Waiting {
    waiting: Arc<Mutex<WaitingRequests>>,
    request_id: String,
    answers: mpsc::Receiver<Response>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.waiting).remove(&self.request_id);
    }
}

/// The other servers' answers to a broadcast with acks: each server first
/// says how many sockets it asked, then relays their acks. Complete when
/// every server has counted and every counted ack has come; cut short at
/// the deadline (the answers missing then are not reported: Node's
/// adapter does not say which sockets they were).
struct RemoteAcks {
    waiting: Waiting,
    servers: usize,
    counted: usize,
    expected: usize,
    received: usize,
}

impl RemoteAcks {
    fn into_stream(
        self,
        deadline: socketio::runtime::Sleep,
    ) -> impl Stream<Item = AckAnswer> + Send {
        futures_util::stream::unfold((self, deadline), |(mut acks, mut deadline)| async move {
            while acks.counted < acks.servers || acks.received < acks.expected {
                let answer = match select(acks.waiting.answers.next(), &mut deadline).await {
                    Either::Left((Some(answer), _)) => answer,
                    Either::Left((None, _)) | Either::Right(_) => return None,
                };
                match answer {
                    Response::ClientCount { count, .. } => {
                        acks.counted += 1;
                        acks.expected += usize::try_from(count).unwrap_or(usize::MAX);
                    }
                    Response::Ack { answer, sid, .. } => {
                        acks.received += 1;
                        let sid = sid
                            .and_then(|sid| Sid::parse(&sid).ok())
                            .unwrap_or_else(|| unnamed_sid(acks.received));
                        return Some(((sid, Ok(answer)), (acks, deadline)));
                    }
                    _ => {}
                }
            }
            None
        })
    }
}

/// The id given to an answer whose server did not say which socket sent
/// it (Node's adapter does not): `remote-ack-N`, N counting from 1 per
/// broadcast.
fn unnamed_sid(n: usize) -> Sid {
    Sid::parse(&format!("remote-ack-{n}")).unwrap_or_else(|_| Sid::from_random_bytes([0; 16]))
}

fn codec_error(error: CodecError) -> AdapterError {
    AdapterError::Other(Box::new(error))
}

impl Adapter for RedisAdapter {
    fn keeps_sessions(&self) -> bool {
        self.wire.stream().is_some()
    }

    fn persist_session(&self, session: Session, ttl: Duration) -> AdapterFuture<'_, ()> {
        Box::pin(async move {
            let Some(streams) = self.broker.streams() else {
                return;
            };
            let encoded = match streams_wire::encode_session(&session) {
                Ok(encoded) => encoded,
                Err(error) => {
                    tracing::warn!(%error, "redis adapter: a session cannot be encoded");
                    return;
                }
            };
            let key = format!("{}{}", streams.session_key_prefix, session.pid);
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(encoded).arg("PX").arg(millis);
            if let Err(error) = self.broker.query::<()>("SET session", &set).await {
                tracing::warn!(%error, "redis adapter: a session could not be kept");
            }
        })
    }

    fn forget_session(&self, pid: Str) -> AdapterFuture<'_, ()> {
        Box::pin(async move {
            let Some(streams) = self.broker.streams() else {
                return;
            };
            let mut del = redis::cmd("DEL");
            del.arg(format!("{}{pid}", streams.session_key_prefix));
            if let Err(error) = self.broker.query::<()>("DEL session", &del).await {
                tracing::warn!(%error, "redis adapter: a session could not be forgotten");
            }
        })
    }

    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> AdapterFuture<'_, Result<Option<Restored<serde_json::Value>>, AdapterError>> {
        Box::pin(async move {
            let Some(stream) = self.wire.stream() else {
                return Ok(None);
            };
            self.restore_from_stream(stream, &pid, &offset).await
        })
    }

    fn resume(
        &self,
        sid: Sid,
        pid: &str,
        missed: Vec<MissedPacket>,
        start: &mut dyn FnMut(Vec<MissedPacket>),
    ) {
        self.gate.resume(sid, pid, missed, start);
    }

    fn add_all(&self, id: Sid, rooms: &[Room]) {
        self.local.add_all(id, rooms);
        self.rooms_changed(rooms);
    }

    fn del(&self, id: Sid, room: &Room) {
        self.local.del(id, room);
        self.rooms_changed([room]);
    }

    fn del_all(&self, id: Sid) {
        let rooms = match self.wire.subscription_mode() {
            Some(_) => self.local.socket_rooms(id),
            None => Vec::new(),
        };
        self.local.del_all(id);
        self.gate.forget(id);
        self.rooms_changed(&rooms);
    }

    fn socket_rooms(&self, id: Sid) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<(), BroadcastError>> {
        if let Some(stream) = self.wire.stream() {
            return Box::pin(async move {
                if opts.flags.local {
                    return self.local.broadcast_local_at(packet, &opts, None);
                }
                self.broadcast_through_stream(stream, packet, opts).await
            });
        }
        // Encoded before the local delivery, which may record the packet
        // for recovery and change its arguments.
        let remote = (!opts.flags.local).then(|| self.wire.broadcast(&packet, &opts));
        let local = self.local.broadcast_local(packet, &opts);
        Box::pin(async move {
            if let Some(remote) = remote {
                self.publish(remote.map_err(codec_error)?).await?;
            }
            local
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<AckStream, BroadcastError>> {
        Box::pin(async move {
            if opts.flags.local {
                return Ok(self.local.broadcast_with_ack_local(packet, &opts));
            }
            let request_id = self.wire.request_id();
            let message = self
                .wire
                .broadcast_with_ack(&request_id, &packet, &opts)
                .map_err(codec_error)?;
            let servers = self.other_servers().await?;
            let waiting = self.wait_for(&request_id, self.broker.config.ack_queue);
            self.publish(message).await?;
            let mut stream = self.local.broadcast_with_ack_local(packet, &opts);
            let timeout = opts
                .flags
                .timeout
                .unwrap_or(self.broker.config.requests_timeout);
            let deadline = self.local.namespace().sleep(timeout);
            let remote = RemoteAcks {
                waiting,
                servers,
                counted: 0,
                expected: 0,
                received: 0,
            };
            stream.merge(remote.into_stream(deadline));
            Ok(stream)
        })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<Vec<RemoteSocket>, AdapterError>> {
        Box::pin(async move {
            let mut sockets = self.local.fetch_sockets_local(&opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let servers = self.other_servers().await?;
            if servers == 0 {
                return Ok(sockets);
            }
            let request_id = self.wire.request_id();
            let message = self.wire.fetch(&request_id, &opts);
            let nsp = Str::from(self.nsp());
            let answers =
                self.request("fetch_sockets", message, &request_id, servers, |response| {
                    match response {
                        Response::Sockets { sockets, .. } => Some(sockets),
                        _ => None,
                    }
                })
                .await?;
            for details in answers.into_iter().flatten() {
                let Ok(id) = Sid::parse(&details.id) else {
                    continue;
                };
                let socket = RemoteSocket::remote(id, nsp.clone(), details.rooms, details.data);
                sockets.push(socket.with_handshake(details.handshake));
            }
            Ok(sockets)
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets_local(&opts, &rooms);
        self.rooms_changed(&rooms);
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            self.publish(self.wire.rooms(true, &opts, &rooms)).await
        })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets_local(&opts, &rooms);
        self.rooms_changed(&rooms);
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            self.publish(self.wire.rooms(false, &opts, &rooms)).await
        })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.local.disconnect_sockets_local(&opts, close).await;
            if opts.flags.local {
                return Ok(());
            }
            self.publish(self.wire.disconnect(&opts, close)).await
        })
    }

    fn server_side_emit(
        &self,
        event: String,
        payload: Payload,
        ack_timeout: Option<Duration>,
    ) -> AdapterFuture<'_, Result<Vec<Payload>, AdapterError>> {
        Box::pin(async move {
            let request_id = ack_timeout.map(|_| self.wire.request_id());
            let message = self
                .wire
                .server_side_emit(request_id.as_deref(), &event, &payload)
                .map_err(codec_error)?;
            let Some(request_id) = request_id else {
                return self.publish(message).await.map(|()| Vec::new());
            };
            let servers = self.other_servers().await?;
            if servers == 0 {
                return Ok(Vec::new());
            }
            self.request(
                "server_side_emit",
                message,
                &request_id,
                servers,
                |response| match response {
                    Response::ServerSideEmit { answer, .. } => Some(answer),
                    _ => None,
                },
            )
            .await
        })
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.other_servers().await? + 1) })
    }

    fn all_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let mut rooms: BTreeSet<Room> = self.local.all_rooms_local().into_iter().collect();
            let servers = self.other_servers().await?;
            if servers == 0 {
                return Ok(rooms.into_iter().collect());
            }
            let request_id = self.wire.request_id();
            let Some(message) = self.wire.all_rooms(&request_id) else {
                // The sharded format has no such request: a room exists
                // only while a socket is in it, so the rooms of every
                // socket in the cluster are all of them.
                let everyone = BroadcastOptions::new(Vec::new(), Vec::new());
                for socket in self.fetch_sockets(everyone).await? {
                    rooms.extend(socket.rooms);
                }
                return Ok(rooms.into_iter().collect());
            };
            let answers = self
                .request(
                    "all_rooms",
                    message,
                    &request_id,
                    servers,
                    |response| match response {
                        Response::Rooms { rooms, .. } => Some(rooms),
                        _ => None,
                    },
                )
                .await?;
            rooms.extend(answers.into_iter().flatten());
            Ok(rooms.into_iter().collect())
        })
    }

    fn init(&self) -> AdapterFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move { self.broker.subscribe(self).await })
    }

    fn close(&self) -> AdapterFuture<'_, ()> {
        Box::pin(async move { self.broker.unregister(self).await })
    }
}
