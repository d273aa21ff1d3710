//! One namespace's adapter: the local half is a [`LocalAdapter`], the rest
//! goes through Redis as Node's adapter sends it.
//!
//! Requests wait for one answer per other server, counted as Node counts
//! them: the subscribers of the namespace's request channel
//! (`PUBSUB NUMSUB`), minus this one. Answers arrive on the subscriber
//! and are handed to the waiting request by id, through a bounded queue:
//! a flood of answers is dropped (and logged), not buffered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use socketio::adapter::{
    node_handshake, oneshot, AckAnswer, AckStream, Adapter, AdapterError, AdapterFuture,
    BroadcastError, BroadcastOptions, LocalAdapter, LocalNamespace, Packet, Payload, RemoteSocket,
    Room, Sid, Str,
};
use socketio::runtime::DynRuntime;

use crate::broker::Broker;
use crate::lock;
use crate::wire::{self, Channels, Request, Response, SocketDetails};

/// The channels an adapter subscribes to.
pub(crate) struct Subscriptions {
    /// Requests, shared responses, its own responses.
    pub(crate) exact: Vec<String>,
    /// Every broadcast channel of the namespace.
    pub(crate) pattern: String,
}

/// A namespace's adapter on Redis (classic pub/sub, Node's `createAdapter`).
pub struct RedisAdapter {
    local: LocalAdapter,
    broker: Arc<Broker>,
    /// This adapter's id in the cluster (6 characters, as Node's).
    uid: String,
    channels: Channels,
    /// Requests of this adapter waiting for answers, by request id.
    waiting: Arc<Mutex<WaitingRequests>>,
}

type WaitingRequests = HashMap<String, mpsc::Sender<Response>>;

impl RedisAdapter {
    pub(crate) fn new(namespace: LocalNamespace, broker: Arc<Broker>) -> RedisAdapter {
        let uid = random_id();
        let channels = Channels::new(&broker.config.key, namespace.name(), &uid);
        RedisAdapter {
            local: LocalAdapter::new(namespace),
            broker,
            uid,
            channels,
            waiting: Arc::default(),
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn DynRuntime> {
        self.local.namespace().runtime()
    }

    pub(crate) fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            exact: vec![
                self.channels.request.clone(),
                self.channels.response.clone(),
                self.channels.own_response.clone(),
            ],
            pattern: self.channels.broadcast_pattern(),
        }
    }

    pub(crate) fn owns_channel(&self, channel: &str) -> bool {
        channel == self.channels.request
            || channel == self.channels.response
            || channel == self.channels.own_response
            || channel.starts_with(self.channels.broadcast.as_str())
    }

    fn nsp(&self) -> &str {
        self.local.namespace().name()
    }

    /// A message from the subscriber, on one of this adapter's channels.
    /// Undecodable messages are logged and dropped: one bad publisher must
    /// not stop the others' traffic.
    pub(crate) fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let outcome = if channel == self.channels.request {
            wire::decode_request(payload).map(|request| self.on_request(request))
        } else if channel == self.channels.response || channel == self.channels.own_response {
            wire::decode_response(payload).map(|response| self.on_response(response))
        } else {
            wire::decode_broadcast(payload).map(|broadcast| {
                if broadcast.uid != self.uid && broadcast.packet.nsp.as_str() == self.nsp() {
                    if let Err(error) = self
                        .local
                        .broadcast_local(broadcast.packet, &broadcast.opts)
                    {
                        tracing::debug!(%error, "redis adapter: remote broadcast");
                    }
                }
            })
        };
        if let Err(error) = outcome {
            tracing::warn!(
                %error,
                channel,
                message = %wire::preview(payload),
                "redis adapter: ignored a message it cannot decode"
            );
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

    fn on_request(self: &Arc<Self>, request: Request) {
        match request {
            Request::AllRooms { uid, request_id } if uid != self.uid => {
                let rooms = self.local.all_rooms_local();
                self.respond(&uid, wire::rooms_response(&request_id, &rooms));
            }
            Request::Fetch {
                uid,
                request_id,
                opts,
            } if uid != self.uid => {
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
                self.respond(&uid, wire::sockets_response(&request_id, &sockets));
            }
            Request::Rooms {
                uid,
                join,
                opts,
                rooms,
            } if uid != self.uid => {
                if join {
                    self.local.add_sockets_local(&opts, &rooms);
                } else {
                    self.local.del_sockets_local(&opts, &rooms);
                }
            }
            Request::Disconnect { uid, opts, close } if uid != self.uid => {
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
            } if uid != self.uid => self.on_server_side_emit(request_id, event, args),
            Request::BroadcastWithAck {
                uid,
                request_id,
                packet,
                opts,
            } if uid != self.uid && packet.nsp.as_str() == self.nsp() => {
                self.on_broadcast_with_ack(&uid, request_id, packet, &opts);
            }
            // This adapter's own requests come back to it: already done.
            _ => {}
        }
    }

    /// Runs the server-side handlers in a task of their own; the first
    /// answer goes back when one was asked for.
    fn on_server_side_emit(
        self: &Arc<Self>,
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
            if let Ok(answer) = answer.await {
                // Node's adapter answers server-side events on the shared
                // response channel, whatever its options say.
                let response = wire::server_side_emit_response(&request_id, &answer);
                let _ = adapter
                    .broker
                    .publish(&adapter.channels.response, response)
                    .await;
            }
        }));
    }

    /// Sends the EVENT to the selected local sockets, tells the requester
    /// how many, then relays each ack as it comes.
    fn on_broadcast_with_ack(
        self: &Arc<Self>,
        requester: &str,
        request_id: String,
        packet: Packet,
        opts: &BroadcastOptions,
    ) {
        let mut answers = self.local.broadcast_with_ack_local(packet, opts);
        let count = answers.local_len();
        let channel = self.response_channel(requester);
        let adapter = self.clone();
        self.runtime().spawn(Box::pin(async move {
            let count_message = wire::client_count_response(&request_id, count);
            if adapter
                .broker
                .publish(&channel, count_message)
                .await
                .is_err()
            {
                return;
            }
            while let Some((sid, answer)) = answers.next().await {
                // Node relays answers only; timeouts are the requester's.
                let Ok(answer) = answer else { continue };
                match wire::ack_response(&request_id, sid.as_str(), &answer) {
                    Ok(message) => {
                        let _ = adapter.broker.publish(&channel, message).await;
                    }
                    Err(error) => tracing::warn!(%error, "redis adapter: an ack cannot be encoded"),
                }
            }
        }));
    }

    fn response_channel(&self, requester: &str) -> String {
        let specific = self.broker.config.publish_on_specific_response_channel;
        self.channels.response_for(specific, requester)
    }

    /// Publishes a response in a task (the subscriber never waits).
    fn respond(self: &Arc<Self>, requester: &str, response: Vec<u8>) {
        let channel = self.response_channel(requester);
        let adapter = self.clone();
        self.runtime().spawn(Box::pin(async move {
            let _ = adapter.broker.publish(&channel, response).await;
        }));
    }

    /// How many other servers serve this namespace.
    async fn other_servers(&self) -> Result<usize, AdapterError> {
        let all = self.broker.subscribers(&self.channels.request).await?;
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
    async fn request<T>(
        &self,
        message: Vec<u8>,
        request_id: &str,
        expected: usize,
        mut keep: impl FnMut(Response) -> Option<T>,
    ) -> Result<Vec<T>, AdapterError> {
        let mut waiting = self.wait_for(request_id, expected.max(1) * 2);
        self.broker.publish(&self.channels.request, message).await?;
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

impl Adapter for RedisAdapter {
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
        // Encoded before the local delivery, which may record the packet
        // for recovery and change its arguments.
        let remote = (!opts.flags.local).then(|| {
            let channel = self.channels.broadcast_channel(&opts);
            wire::encode_broadcast(&self.uid, &packet, &opts).map(|message| (channel, message))
        });
        let local = self.local.broadcast_local(packet, &opts);
        Box::pin(async move {
            if let Some(remote) = remote {
                let (channel, message) = remote.map_err(|e| AdapterError::Other(Box::new(e)))?;
                self.broker.publish(&channel, message).await?;
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
            let request_id = random_id();
            let message = wire::broadcast_with_ack_request(&self.uid, &request_id, &packet, &opts)
                .map_err(|e| AdapterError::Other(Box::new(e)))?;
            let servers = self.other_servers().await?;
            let waiting = self.wait_for(&request_id, self.broker.config.ack_queue);
            self.broker.publish(&self.channels.request, message).await?;
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
            let request_id = random_id();
            let message = wire::fetch_request(&self.uid, &request_id, &opts);
            let nsp = Str::from(self.nsp());
            let answers = self
                .request(message, &request_id, servers, |response| match response {
                    Response::Sockets { sockets, .. } => Some(sockets),
                    _ => None,
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
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            let message = wire::rooms_request(&self.uid, true, &opts, &rooms);
            self.broker.publish(&self.channels.request, message).await
        })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets_local(&opts, &rooms);
        Box::pin(async move {
            if opts.flags.local {
                return Ok(());
            }
            let message = wire::rooms_request(&self.uid, false, &opts, &rooms);
            self.broker.publish(&self.channels.request, message).await
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
            let message = wire::disconnect_request(&self.uid, &opts, close);
            self.broker.publish(&self.channels.request, message).await
        })
    }

    fn server_side_emit(
        &self,
        event: String,
        payload: Payload,
        ack_timeout: Option<Duration>,
    ) -> AdapterFuture<'_, Result<Vec<Payload>, AdapterError>> {
        Box::pin(async move {
            let request_id = ack_timeout.map(|_| random_id());
            let message =
                wire::server_side_emit_request(&self.uid, request_id.as_deref(), &event, &payload)
                    .map_err(|e| AdapterError::Other(Box::new(e)))?;
            let Some(request_id) = request_id else {
                self.broker.publish(&self.channels.request, message).await?;
                return Ok(Vec::new());
            };
            let servers = self.other_servers().await?;
            if servers == 0 {
                return Ok(Vec::new());
            }
            self.request(message, &request_id, servers, |response| match response {
                Response::ServerSideEmit { data, .. } => {
                    let args = serde_json::Value::Array(vec![data]).to_string();
                    Some(Payload::from_raw(Str::from(args), Vec::new()))
                }
                _ => None,
            })
            .await
        })
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.other_servers().await? + 1) })
    }

    fn all_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let mut rooms: std::collections::BTreeSet<Room> =
                self.local.all_rooms_local().into_iter().collect();
            let servers = self.other_servers().await?;
            if servers > 0 {
                let request_id = random_id();
                let message = wire::all_rooms_request(&self.uid, &request_id);
                let answers = self
                    .request(message, &request_id, servers, |response| match response {
                        Response::Rooms { rooms, .. } => Some(rooms),
                        _ => None,
                    })
                    .await?;
                rooms.extend(answers.into_iter().flatten());
            }
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

/// A request or adapter id: 6 characters of `A-Za-z0-9-_`, as Node's
/// `uid2(6)` makes them.
fn random_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 64)] as char)
        .collect()
}
