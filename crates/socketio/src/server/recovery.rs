//! Connection state recovery (Node's `connectionStateRecovery`) for one
//! namespace: events sent to its sockets carry an offset and are kept for a
//! while; a socket that drops for a transport reason is remembered under its
//! private id; a client that comes back with that id and its last offset gets
//! its id, rooms and the events it missed.

use std::sync::Mutex;

use bytes::Bytes;
use engineio_proto::{Sid, Str};
use socketio_proto::recovery::{RecoveryConfig, RecoveryStore, Restored};
use socketio_proto::rooms::Room;

use crate::runtime::Clock;

/// A namespace's recovery store and the clock it runs on.
pub(crate) struct NamespaceRecovery {
    store: Mutex<RecoveryStore<serde_json::Value>>,
    clock: Clock,
    pub(crate) config: RecoveryConfig,
}

impl NamespaceRecovery {
    pub(crate) fn new(config: RecoveryConfig, clock: Clock) -> NamespaceRecovery {
        // A random prefix, so offsets of two server runs never collide.
        let prefix = format!("{}-", crate::engine::random_sid());
        NamespaceRecovery {
            store: Mutex::new(RecoveryStore::new(config.clone(), Str::from(prefix))),
            clock,
            config,
        }
    }

    /// Appends an offset to an event's data and keeps it for replay. Data
    /// that is not an array (cannot happen for events we encode) goes out
    /// unrecorded.
    pub(crate) fn record(
        &self,
        data: Str,
        attachments: &[Bytes],
        rooms: &[Room],
        except: &[Room],
    ) -> Str {
        let now = self.clock.now();
        match super::lock(&self.store).record(now, &data, attachments, rooms, except) {
            Ok(recorded) => recorded.data,
            Err(_) => data,
        }
    }

    /// Remembers a socket that left for a recoverable reason.
    pub(crate) fn persist(&self, pid: Str, sid: Sid, rooms: Vec<Room>, data: serde_json::Value) {
        let now = self.clock.now();
        super::lock(&self.store).persist(now, pid, sid, rooms, data);
    }

    /// The session a CONNECT's auth (`{"pid":…,"offset":…,…}`) asks back, if
    /// it is still known and its offset still kept.
    pub(crate) fn restore(&self, auth: &str) -> Option<Restored<serde_json::Value>> {
        let (pid, offset) = recovering(auth)?;
        let now = self.clock.now();
        super::lock(&self.store).restore(now, &pid, &offset)
    }
}

/// The private id and offset a CONNECT's auth asks back, if it has both.
pub(crate) fn recovering(auth: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Recovering {
        pid: String,
        offset: String,
    }
    let Recovering { pid, offset } = serde_json::from_str(auth).ok()?;
    Some((pid, offset))
}

/// A fresh private session id.
pub(crate) fn new_pid() -> Str {
    Str::from(crate::engine::random_sid().to_string())
}
