//! The two formats Node's Redis adapters speak, behind one interface: each
//! operation becomes a channel and the bytes to publish there, and each
//! message heard becomes a broadcast, a request or a response. The adapter
//! (`adapter.rs`) holds the behaviour; this file only knows the formats.

use socketio::adapter::{BroadcastOptions, Packet, Payload, Room};

use crate::codec::CodecError;
use crate::sharded_wire::{self, SubscriptionMode};
use crate::wire::{self, Broadcast, Request, Response, SocketDetails};

/// Bytes to publish, and where.
pub(crate) type Outgoing = (String, Vec<u8>);

/// What a message heard on one of the adapter's channels carries.
pub(crate) enum Incoming {
    /// Another server's broadcast (to deliver here).
    Broadcast(Broadcast),
    /// Another server's request.
    Request(Request),
    /// An answer to one of this adapter's requests.
    Response(Response),
    /// This adapter's own message, another namespace's, or bookkeeping.
    Ignored,
}

/// One namespace's channels and message format.
pub(crate) struct Dialect {
    /// This adapter's id in the cluster.
    pub(crate) uid: String,
    nsp: String,
    flavor: Flavor,
}

enum Flavor {
    /// `createAdapter`: PUBLISH, request/response channels.
    Classic {
        channels: wire::Channels,
        /// Answers go to the requester's own channel.
        specific_responses: bool,
    },
    /// `createShardedAdapter`: SPUBLISH, one envelope format. Also the
    /// Streams format, whose messages are the same with no room channels
    /// (as in the static mode), some of them carried by a stream.
    Sharded {
        channels: sharded_wire::Channels,
        mode: SubscriptionMode,
        streams: Option<Streams>,
    },
}

/// What the Streams format adds to the sharded one.
struct Streams {
    /// This namespace's stream.
    stream: String,
    /// Pub/sub with `SPUBLISH` / `SSUBSCRIBE` rather than `PUBLISH` /
    /// `SUBSCRIBE`.
    sharded_pubsub: bool,
}

impl Dialect {
    /// Node's classic adapter for namespace `nsp`: ids of 6 characters.
    pub(crate) fn classic(key: &str, nsp: &str, specific_responses: bool) -> Dialect {
        let uid = random_id(6);
        let channels = wire::Channels::new(key, nsp, &uid);
        Dialect {
            uid,
            nsp: nsp.to_owned(),
            flavor: Flavor::Classic {
                channels,
                specific_responses,
            },
        }
    }

    /// Node's sharded adapter for namespace `nsp`: ids of 16 hex digits.
    pub(crate) fn sharded(key: &str, nsp: &str, mode: SubscriptionMode) -> Dialect {
        Dialect::cluster_adapter(key, nsp, mode, None)
    }

    /// Node's streams adapter for namespace `nsp`, channels prefixed with
    /// `key`, its messages kept in `stream`.
    pub(crate) fn streams(key: &str, nsp: &str, stream: String, sharded_pubsub: bool) -> Dialect {
        let streams = Streams {
            stream,
            sharded_pubsub,
        };
        Dialect::cluster_adapter(key, nsp, SubscriptionMode::Static, Some(streams))
    }

    /// Node's `ClusterAdapter` messages: the sharded and Streams formats.
    fn cluster_adapter(
        key: &str,
        nsp: &str,
        mode: SubscriptionMode,
        streams: Option<Streams>,
    ) -> Dialect {
        let uid = random_hex_id();
        let channels = sharded_wire::Channels::new(key, nsp, &uid);
        Dialect {
            uid,
            nsp: nsp.to_owned(),
            flavor: Flavor::Sharded {
                channels,
                mode,
                streams,
            },
        }
    }

    /// The Streams format's stream; `None` for the pub/sub formats.
    pub(crate) fn stream(&self) -> Option<&str> {
        match &self.flavor {
            Flavor::Sharded {
                streams: Some(streams),
                ..
            } => Some(&streams.stream),
            _ => None,
        }
    }

    /// Whether the channels are shard channels (`SSUBSCRIBE`).
    pub(crate) fn shard_channels(&self) -> bool {
        match &self.flavor {
            Flavor::Classic { .. } => false,
            Flavor::Sharded { streams, .. } => streams.as_ref().is_none_or(|s| s.sharded_pubsub),
        }
    }

    /// A fresh request id, in the format's own shape.
    pub(crate) fn request_id(&self) -> String {
        match self.flavor {
            Flavor::Classic { .. } => random_id(6),
            Flavor::Sharded { .. } => random_hex_id(),
        }
    }

    /// `PUBLISH` or `SPUBLISH`.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.shard_channels() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// How the namespace's servers are counted: the `PUBSUB` subcommand
    /// and the channel every server subscribes to.
    pub(crate) fn count_query(&self) -> (&'static str, &str) {
        match &self.flavor {
            Flavor::Classic { channels, .. } => ("NUMSUB", &channels.request),
            Flavor::Sharded { channels, .. } if self.shard_channels() => {
                ("SHARDNUMSUB", &channels.main)
            }
            Flavor::Sharded { channels, .. } => ("NUMSUB", &channels.main),
        }
    }

    /// The sharded subscription mode; `None` for the classic format.
    pub(crate) fn subscription_mode(&self) -> Option<SubscriptionMode> {
        match self.flavor {
            Flavor::Classic { .. } => None,
            Flavor::Sharded { mode, .. } => Some(mode),
        }
    }

    /// Channels subscribed for the adapter's whole life: exact channels,
    /// and (classic) the pattern of every broadcast channel.
    pub(crate) fn fixed_channels(&self) -> (Vec<String>, Option<String>) {
        match &self.flavor {
            Flavor::Classic { channels, .. } => (
                vec![
                    channels.request.clone(),
                    channels.response.clone(),
                    channels.own_response.clone(),
                ],
                Some(channels.broadcast_pattern()),
            ),
            Flavor::Sharded { channels, .. } => (
                vec![channels.main.clone(), channels.own_response.clone()],
                None,
            ),
        }
    }

    /// The channel of a room (sharded dynamic modes subscribe to it while
    /// the room exists here).
    pub(crate) fn room_channel(&self, room: &Room) -> String {
        match &self.flavor {
            Flavor::Classic { channels, .. } => {
                format!("{}{}#", channels.broadcast, room.as_str())
            }
            Flavor::Sharded { channels, .. } => channels.room(room.as_str()),
        }
    }

    /// Whether a message on `channel` is for this adapter.
    pub(crate) fn owns_channel(&self, channel: &str) -> bool {
        match &self.flavor {
            Flavor::Classic { channels, .. } => {
                channel == channels.request
                    || channel == channels.response
                    || channel == channels.own_response
                    || channel.starts_with(channels.broadcast.as_str())
            }
            // Room and response channels extend the main one.
            Flavor::Sharded { channels, .. } => channel.starts_with(channels.main.as_str()),
        }
    }

    /// Decodes a message heard on `channel`; this adapter's own messages
    /// and other namespaces' are [`Incoming::Ignored`].
    pub(crate) fn decode(&self, channel: &str, payload: &[u8]) -> Result<Incoming, CodecError> {
        let incoming = match &self.flavor {
            Flavor::Classic { channels, .. } => {
                if channel == channels.request {
                    match wire::decode_request(payload)? {
                        request if request.uid() == self.uid => Incoming::Ignored,
                        request => Incoming::Request(request),
                    }
                } else if channel == channels.response || channel == channels.own_response {
                    Incoming::Response(wire::decode_response(payload)?)
                } else {
                    let broadcast = wire::decode_broadcast(payload)?;
                    if broadcast.uid == self.uid || broadcast.packet.nsp.as_str() != self.nsp {
                        Incoming::Ignored
                    } else {
                        Incoming::Broadcast(broadcast)
                    }
                }
            }
            Flavor::Sharded { .. } => {
                let envelope = sharded_wire::decode(payload)?;
                if envelope.uid == self.uid || envelope.nsp != self.nsp {
                    return Ok(Incoming::Ignored);
                }
                match envelope.message {
                    sharded_wire::Message::Broadcast(broadcast) => Incoming::Broadcast(broadcast),
                    sharded_wire::Message::Request(request) => Incoming::Request(request),
                    sharded_wire::Message::Response(response) => Incoming::Response(response),
                    sharded_wire::Message::Other(_) => Incoming::Ignored,
                }
            }
        };
        if let Incoming::Request(Request::BroadcastWithAck { packet, .. }) = &incoming {
            if packet.nsp.as_str() != self.nsp {
                return Ok(Incoming::Ignored);
            }
        }
        Ok(incoming)
    }

    /// A broadcast without acks.
    pub(crate) fn broadcast(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Result<Outgoing, CodecError> {
        Ok(match &self.flavor {
            Flavor::Classic { channels, .. } => (
                channels.broadcast_channel(opts),
                wire::encode_broadcast(&self.uid, packet, opts)?,
            ),
            Flavor::Sharded { channels, mode, .. } => (
                mode.broadcast_channel(channels, opts),
                sharded_wire::broadcast(&self.uid, packet, opts)?,
            ),
        })
    }

    /// Where requests go.
    fn request_channel(&self) -> String {
        match &self.flavor {
            Flavor::Classic { channels, .. } => channels.request.clone(),
            Flavor::Sharded { channels, .. } => channels.main.clone(),
        }
    }

    /// A broadcast whose recipients answer with acks.
    pub(crate) fn broadcast_with_ack(
        &self,
        request_id: &str,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Result<Outgoing, CodecError> {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => {
                wire::broadcast_with_ack_request(&self.uid, request_id, packet, opts)?
            }
            Flavor::Sharded { .. } => {
                sharded_wire::broadcast_with_ack_request(&self.uid, request_id, packet, opts)?
            }
        };
        Ok((self.request_channel(), bytes))
    }

    /// Snapshots of the selected sockets, everywhere.
    pub(crate) fn fetch(&self, request_id: &str, opts: &BroadcastOptions) -> Outgoing {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::fetch_request(&self.uid, request_id, opts),
            Flavor::Sharded { .. } => {
                sharded_wire::fetch_request(&self.uid, &self.nsp, request_id, opts)
            }
        };
        (self.request_channel(), bytes)
    }

    /// Selected sockets join (`join`) or leave rooms.
    pub(crate) fn rooms(&self, join: bool, opts: &BroadcastOptions, rooms: &[Room]) -> Outgoing {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::rooms_request(&self.uid, join, opts, rooms),
            Flavor::Sharded { .. } => {
                sharded_wire::rooms_request(&self.uid, &self.nsp, join, opts, rooms)
            }
        };
        (self.request_channel(), bytes)
    }

    /// Selected sockets disconnect.
    pub(crate) fn disconnect(&self, opts: &BroadcastOptions, close: bool) -> Outgoing {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::disconnect_request(&self.uid, opts, close),
            Flavor::Sharded { .. } => {
                sharded_wire::disconnect_request(&self.uid, &self.nsp, opts, close)
            }
        };
        (self.request_channel(), bytes)
    }

    /// A server-side event, answered when `request_id` is given.
    pub(crate) fn server_side_emit(
        &self,
        request_id: Option<&str>,
        event: &str,
        args: &Payload,
    ) -> Result<Outgoing, CodecError> {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => {
                wire::server_side_emit_request(&self.uid, request_id, event, args)?
            }
            Flavor::Sharded { .. } => sharded_wire::server_side_emit_request(
                &self.uid, &self.nsp, request_id, event, args,
            )?,
        };
        Ok((self.request_channel(), bytes))
    }

    /// Every server's rooms; `None` where the format has no such request
    /// (the sharded one).
    pub(crate) fn all_rooms(&self, request_id: &str) -> Option<Outgoing> {
        match &self.flavor {
            Flavor::Classic { channels, .. } => Some((
                channels.request.clone(),
                wire::all_rooms_request(&self.uid, request_id),
            )),
            Flavor::Sharded { .. } => None,
        }
    }

    /// Where answers to `requester` go.
    fn response_channel(&self, requester: &str) -> String {
        match &self.flavor {
            Flavor::Classic {
                channels,
                specific_responses,
            } => channels.response_for(*specific_responses, requester),
            Flavor::Sharded { channels, .. } => channels.response_for(requester),
        }
    }

    /// This server's rooms, for `requester` (classic only).
    pub(crate) fn rooms_response(
        &self,
        requester: &str,
        request_id: &str,
        rooms: &[Room],
    ) -> Outgoing {
        (
            self.response_channel(requester),
            wire::rooms_response(request_id, rooms),
        )
    }

    /// This server's selected sockets, for `requester`.
    pub(crate) fn sockets_response(
        &self,
        requester: &str,
        request_id: &str,
        sockets: &[SocketDetails],
    ) -> Outgoing {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::sockets_response(request_id, sockets),
            Flavor::Sharded { .. } => {
                sharded_wire::sockets_response(&self.uid, &self.nsp, request_id, sockets)
            }
        };
        (self.response_channel(requester), bytes)
    }

    /// The answer of this server's server-side handler, for `requester`.
    pub(crate) fn server_side_emit_response(
        &self,
        requester: &str,
        request_id: &str,
        answer: &Payload,
    ) -> Result<Outgoing, CodecError> {
        Ok(match &self.flavor {
            // Node's classic adapter answers server-side events on the
            // shared response channel, whatever its options say.
            Flavor::Classic { channels, .. } => (
                channels.response.clone(),
                wire::server_side_emit_response(request_id, answer),
            ),
            Flavor::Sharded { .. } => (
                self.response_channel(requester),
                sharded_wire::server_side_emit_response(&self.uid, &self.nsp, request_id, answer)?,
            ),
        })
    }

    /// How many local sockets a broadcast with acks went to.
    pub(crate) fn client_count_response(
        &self,
        requester: &str,
        request_id: &str,
        count: usize,
    ) -> Outgoing {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::client_count_response(request_id, count),
            Flavor::Sharded { .. } => {
                sharded_wire::client_count_response(&self.uid, &self.nsp, request_id, count)
            }
        };
        (self.response_channel(requester), bytes)
    }

    /// One local socket's ack.
    pub(crate) fn ack_response(
        &self,
        requester: &str,
        request_id: &str,
        sid: &str,
        answer: &Payload,
    ) -> Result<Outgoing, CodecError> {
        let bytes = match self.flavor {
            Flavor::Classic { .. } => wire::ack_response(request_id, sid, answer)?,
            Flavor::Sharded { .. } => {
                sharded_wire::ack_response(&self.uid, &self.nsp, request_id, sid, answer)?
            }
        };
        Ok((self.response_channel(requester), bytes))
    }
}

/// `len` characters of `A-Za-z0-9-_`, as Node's `uid2(len)` makes them
/// (the classic adapter's ids).
fn random_id(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 64)] as char)
        .collect()
}

/// 8 random bytes in lowercase hex, as socket.io-adapter's `randomId()`
/// (the sharded adapter's ids).
fn random_hex_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
