//! The Streams format's readers: one task and one connection per stream
//! (an `XREAD` blocks its connection, and on a cluster each stream may live
//! on another node), each handing the entries it reads to the adapter of
//! their namespace, in order.
//!
//! A reader starts after the entry that is last when it first connects,
//! and says so (`started`): the subscriber subscribes the namespaces'
//! channels only then, so another server that counts this one already
//! has its entries read. After a lost connection it goes on from the last
//! entry it read, so nothing the stream still holds is skipped.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;
use socketio::runtime::DynRuntime;

use crate::broker::{Backoff, Broker, Stopped};

/// Reads `stream` until the broker is gone or stopped.
pub(crate) async fn run(
    broker: Weak<Broker>,
    runtime: Arc<dyn DynRuntime>,
    stream: String,
    mut stopped: Stopped,
    started: oneshot::Sender<()>,
) {
    let mut started = Some(started);
    let mut backoff = Backoff::default();
    // The last entry read (or skipped at the start).
    let mut offset: Option<String> = None;
    loop {
        if !backoff.wait(&runtime, &mut stopped).await {
            return;
        }
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let Some(streams) = strong.streams().cloned() else {
            return;
        };
        // An XREAD's reply may take its whole block time.
        let timeout = strong.config.requests_timeout + streams.block_time;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(strong.config.connect_timeout))
            .set_response_timeout(Some(timeout));
        let connect = Box::pin(strong.endpoint.commands(&config, timeout));
        let mut connection = match select(&mut stopped, connect).await {
            Either::Left(_) => return,
            Either::Right((Ok(connection), _)) => connection,
            Either::Right((Err(error), _)) => {
                tracing::warn!(%error, stream, "redis adapter: stream reader cannot connect");
                backoff.failed(&strong.config);
                continue;
            }
        };
        if offset.is_none() {
            let mut command = redis::cmd("XREVRANGE");
            command.arg(&stream).arg("+").arg("-").arg("COUNT").arg(1);
            let last = command.query_async::<StreamRangeReply>(&mut connection);
            let outcome = select(&mut stopped, Box::pin(last)).await;
            match outcome {
                Either::Left(_) => return,
                Either::Right((Ok(reply), _)) => {
                    let start = reply.ids.first().map_or("0-0".to_owned(), |e| e.id.clone());
                    strong.stream_read(&stream, &start);
                    offset = Some(start);
                }
                Either::Right((Err(error), _)) => {
                    tracing::warn!(%error, stream, "redis adapter: stream reader cannot start");
                    backoff.failed(&strong.config);
                    continue;
                }
            }
        }
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        if backoff.connected() {
            tracing::info!(stream, "redis adapter: stream reader reconnected");
        }
        drop(strong);
        loop {
            let from = offset.clone().unwrap_or_else(|| "$".to_owned());
            let block = u64::try_from(streams.block_time.as_millis()).unwrap_or(u64::MAX);
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(streams.read_count)
                .arg("BLOCK")
                .arg(block)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&from);
            let read = command.query_async::<Option<StreamReadReply>>(&mut connection);
            let reply = match select(&mut stopped, Box::pin(read)).await {
                Either::Left(_) => return,
                Either::Right((reply, _)) => reply,
            };
            let Some(broker) = broker.upgrade() else {
                return;
            };
            match reply {
                Ok(reply) => {
                    let entries = reply.into_iter().flat_map(|reply| reply.keys);
                    for entry in entries.flat_map(|key| key.ids) {
                        offset = Some(entry.id.clone());
                        route(&broker, entry);
                    }
                    if let Some(offset) = &offset {
                        broker.stream_read(&stream, offset);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, stream, "redis adapter: stream reader lost its connection");
                    backoff.failed(&broker.config);
                    break;
                }
            }
        }
    }
}

/// Hands an entry to the adapter of its namespace (entries without one
/// are not Socket.IO's, and are skipped, as Node does).
fn route(broker: &Broker, entry: StreamId) {
    let fields = fields(entry.map);
    let Some(nsp) = fields
        .iter()
        .find(|(key, _)| key == "nsp")
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
    else {
        return;
    };
    if let Some(adapter) = broker.adapter_of_namespace(nsp) {
        adapter.on_stream_entry(&entry.id, &fields);
    }
}

/// An entry's fields as bytes (taken, not copied).
pub(crate) fn fields(map: HashMap<String, redis::Value>) -> Vec<(String, Vec<u8>)> {
    map.into_iter()
        .filter_map(|(key, value)| match value {
            redis::Value::BulkString(bytes) => Some((key, bytes)),
            redis::Value::SimpleString(text) => Some((key, text.into_bytes())),
            _ => None,
        })
        .collect()
}
