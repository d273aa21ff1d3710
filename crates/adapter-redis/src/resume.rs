//! Streams: restoring a session while the stream keeps being delivered.
//!
//! A session is restored in steps: its events are read from the stream
//! (`XRANGE`), then its socket joins the namespace. Meanwhile this
//! server's stream reader, and its own broadcasts, go on delivering
//! entries. Without care a client recovering under traffic gets an entry
//! twice (read by `XRANGE` and delivered by a reader that lags behind it),
//! gets a new entry before the ones it missed (delivered once its socket is
//! in the namespace, before the missed ones are queued), or never gets one
//! (delivered after `XRANGE` read but before the socket joined). The kill
//! soak (`scripts/soak kill`) saw all three, on about one client in four
//! per failover. Node's adapter does the same steps and has the same races.
//!
//! [`Gate`] closes them. Every delivery of an entry to local sockets goes
//! through it:
//! - from [`Gate::begin`] (before `XRANGE`) until [`Gate::resume`], it
//!   also keeps a copy of each entry meant for the session;
//! - [`Gate::resume`] merges those after the last entry `XRANGE` read into
//!   the missed ones, in stream order, and starts the socket while no
//!   delivery can run;
//! - from then until the stream reader has passed that last entry, the
//!   socket is left out of deliveries of entries up to it (it had them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socketio::adapter::{BroadcastOptions, MissedPacket, Packet, Room, Sid, Str};

use crate::{lock, streams_wire};

/// How long a restore may take between [`Gate::begin`] and
/// [`Gate::resume`]; one whose connection went away before is dropped
/// after this.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// A stream entry id, ordered as Redis orders them.
type EntryId = (u64, u64);

fn entry_id(id: &str) -> Option<EntryId> {
    let (millis, sequence) = id.split_once('-')?;
    Some((millis.parse().ok()?, sequence.parse().ok()?))
}

/// A session being restored.
struct Restoring {
    /// Its rooms, to pick the entries meant for it.
    rooms: Vec<Room>,
    /// The last entry `XRANGE` read (or the client's offset).
    replayed_through: Option<EntryId>,
    /// Entries delivered meanwhile that were meant for it.
    delivered: Vec<(EntryId, MissedPacket)>,
    /// At most this many are kept (the stream's length): beyond, the
    /// restore gives up merging, and its client may miss entries.
    limit: usize,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Restores under way, by private session id.
    restoring: HashMap<String, Restoring>,
    /// Restored sockets and the last entry their replay had.
    floors: HashMap<Sid, EntryId>,
}

/// The deliveries of one namespace's adapter, held while a restored
/// socket starts. Costs one uncontended lock per delivery when no session
/// is being restored.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
}

impl Gate {
    /// A restore of session `pid` (in `rooms`) begins: entries delivered
    /// from now on are kept for it (at most `limit`).
    pub(crate) fn begin(&self, pid: &str, rooms: &[Room], limit: usize) {
        let mut state = lock(&self.state);
        state
            .restoring
            .retain(|_, restoring| restoring.since.elapsed() < ABANDONED_AFTER);
        state.restoring.insert(
            pid.to_owned(),
            Restoring {
                rooms: rooms.to_vec(),
                replayed_through: None,
                delivered: Vec::new(),
                limit,
                since: Instant::now(),
            },
        );
    }

    /// `XRANGE` read the session's entries up to `through`.
    pub(crate) fn replayed(&self, pid: &str, through: &str) {
        if let Some(restoring) = lock(&self.state).restoring.get_mut(pid) {
            restoring.replayed_through = entry_id(through);
        }
    }

    /// The restore of `pid` ended without a socket.
    pub(crate) fn abandon(&self, pid: &str) {
        lock(&self.state).restoring.remove(pid);
    }

    /// Delivers entry `id` with `deliver` (to the local sockets `opts`
    /// selects, minus those that had it in their replay); `from_reader`:
    /// the stream reader delivers it (in stream order).
    pub(crate) fn deliver<T>(
        &self,
        id: &str,
        packet: Packet,
        opts: &BroadcastOptions,
        from_reader: bool,
        deliver: impl FnOnce(Packet, &BroadcastOptions) -> T,
    ) -> T {
        let mut state = lock(&self.state);
        let Some(order) = entry_id(id) else {
            return deliver(packet, opts);
        };
        if state.restoring.is_empty() && state.floors.is_empty() {
            return deliver(packet, opts);
        }
        if let Some(data) = &packet.data {
            let mut given_up = Vec::new();
            for (pid, restoring) in &mut state.restoring {
                if !streams_wire::meant_for(&restoring.rooms, opts) {
                    continue;
                }
                if restoring.delivered.len() >= restoring.limit {
                    given_up.push(pid.clone());
                    continue;
                }
                if let Some(with_offset) = socketio::adapter::with_offset(data, id) {
                    let missed =
                        MissedPacket::new(Str::from(with_offset), packet.attachments.clone());
                    restoring.delivered.push((order, missed));
                }
            }
            for pid in given_up {
                tracing::warn!(
                    "redis adapter: a session restore ran while more than its limit of entries \
                     arrived; its client may miss some of them"
                );
                state.restoring.remove(&pid);
            }
        }
        let had_it: Vec<Room> = state
            .floors
            .iter()
            .filter(|(_, floor)| order <= **floor)
            .map(|(sid, _)| Room::from(sid.as_str()))
            .collect();
        if from_reader {
            // The reader is past these floors: nothing up to them comes again.
            state.floors.retain(|_, floor| order < *floor);
        }
        if had_it.is_empty() {
            return deliver(packet, opts);
        }
        let mut opts = opts.clone();
        opts.except.extend(had_it);
        deliver(packet, &opts)
    }

    /// Starts socket `sid` of session `pid` with `start`: what `XRANGE`
    /// read (`missed`) and, after it, what was delivered meanwhile, in
    /// stream order; no delivery runs until `start` returns.
    pub(crate) fn resume(
        &self,
        sid: Sid,
        pid: &str,
        mut missed: Vec<MissedPacket>,
        start: &mut dyn FnMut(Vec<MissedPacket>),
    ) {
        let mut state = lock(&self.state);
        let Some(restoring) = state.restoring.remove(pid) else {
            // Not a restore of this adapter's (or given up): as it came.
            drop(state);
            return start(missed);
        };
        let through = restoring.replayed_through.unwrap_or((0, 0));
        let mut after: Vec<(EntryId, MissedPacket)> = restoring
            .delivered
            .into_iter()
            .filter(|(order, _)| *order > through)
            .collect();
        // The reader's entries come in order; this server's own broadcasts
        // may interleave with them differently.
        after.sort_by_key(|(order, _)| *order);
        after.dedup_by_key(|(order, _)| *order);
        missed.extend(after.into_iter().map(|(_, packet)| packet));
        state.floors.insert(sid, through);
        start(missed);
    }

    /// Socket `sid` left: it has no floor any more.
    pub(crate) fn forget(&self, sid: Sid) {
        let mut state = lock(&self.state);
        if !state.floors.is_empty() {
            state.floors.remove(&sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketio::adapter::PacketKind;

    fn tick(n: u32) -> Packet {
        Packet::new(
            PacketKind::Event,
            Str::from("/"),
            Some(Str::from(format!("[\"tick\",{n}]"))),
        )
    }

    fn sid(byte: u8) -> Sid {
        Sid::from_random_bytes([byte; 16])
    }

    /// Delivers entry `id` (a tick numbered by its sequence) through the
    /// gate; returns the rooms the delivery left out.
    fn deliver(gate: &Gate, id: &str, opts: &BroadcastOptions, from_reader: bool) -> Vec<Room> {
        let n = id.split_once('-').unwrap().1.parse().unwrap();
        gate.deliver(id, tick(n), opts, from_reader, |_, opts| {
            opts.except.clone()
        })
    }

    fn resumed(gate: &Gate, socket: Sid, missed: Vec<MissedPacket>) -> Vec<String> {
        let mut got = Vec::new();
        gate.resume(socket, "pid", missed, &mut |missed| {
            got = missed.iter().map(|m| m.data.to_string()).collect();
        });
        got
    }

    fn missed(id: &str, n: u32) -> MissedPacket {
        MissedPacket::new(Str::from(format!("[\"tick\",{n},\"{id}\"]")), Vec::new())
    }

    #[test]
    fn what_arrives_during_a_restore_follows_the_replay_once_and_in_order() {
        let gate = Gate::default();
        let all = BroadcastOptions::all();
        gate.begin("pid", &[Room::from("blue")], 100);
        // Delivered while XRANGE reads: 2 (XRANGE will have it too), then
        // this server's own 5 before the reader's 4.
        deliver(&gate, "1-2", &all, true);
        gate.replayed("pid", "1-3");
        deliver(&gate, "1-5", &all, false);
        deliver(&gate, "1-4", &all, true);
        deliver(&gate, "1-4", &all, true);
        let got = resumed(&gate, sid(1), vec![missed("1-2", 2), missed("1-3", 3)]);
        assert_eq!(
            got,
            [
                "[\"tick\",2,\"1-2\"]",
                "[\"tick\",3,\"1-3\"]",
                "[\"tick\",4,\"1-4\"]",
                "[\"tick\",5,\"1-5\"]"
            ]
        );
    }

    #[test]
    fn entries_for_other_rooms_are_not_kept() {
        let gate = Gate::default();
        gate.begin("pid", &[Room::from("blue")], 100);
        gate.replayed("pid", "1-1");
        let mut red = BroadcastOptions::all();
        red.rooms.push(Room::from("red"));
        deliver(&gate, "1-2", &red, true);
        assert!(resumed(&gate, sid(1), Vec::new()).is_empty());
    }

    #[test]
    fn a_resumed_socket_is_left_out_of_what_its_replay_had_until_the_reader_passes() {
        let gate = Gate::default();
        let all = BroadcastOptions::all();
        gate.begin("pid", &[], 100);
        gate.replayed("pid", "1-7");
        resumed(&gate, sid(1), Vec::new());
        let own_room = vec![Room::from(sid(1).as_str())];
        // A lagging reader's 6 and this server's late 7: the replay had them.
        assert_eq!(deliver(&gate, "1-6", &all, true), own_room);
        assert_eq!(deliver(&gate, "1-7", &all, false), own_room);
        // The reader reaches 7: it never delivers up to 7 again.
        assert_eq!(deliver(&gate, "1-7", &all, true), own_room);
        assert!(deliver(&gate, "1-8", &all, true).is_empty());
        assert!(deliver(&gate, "1-3", &all, false).is_empty());
    }

    #[test]
    fn a_socket_that_leaves_has_no_floor() {
        let gate = Gate::default();
        gate.begin("pid", &[], 100);
        gate.replayed("pid", "1-7");
        resumed(&gate, sid(1), Vec::new());
        gate.forget(sid(1));
        assert!(deliver(&gate, "1-6", &BroadcastOptions::all(), true).is_empty());
    }

    #[test]
    fn a_restore_that_falls_too_far_behind_is_given_up() {
        let gate = Gate::default();
        let all = BroadcastOptions::all();
        gate.begin("pid", &[], 2);
        gate.replayed("pid", "1-1");
        for id in ["1-2", "1-3", "1-4"] {
            deliver(&gate, id, &all, true);
        }
        // Given up: the socket starts with what it came with, and no floor.
        assert_eq!(resumed(&gate, sid(1), vec![missed("1-1", 1)]).len(), 1);
        assert!(deliver(&gate, "1-1", &all, true).is_empty());
    }

    #[test]
    fn an_abandoned_restore_keeps_nothing() {
        let gate = Gate::default();
        gate.begin("pid", &[], 100);
        gate.abandon("pid");
        deliver(&gate, "1-2", &BroadcastOptions::all(), true);
        assert!(lock(&gate.state).restoring.is_empty());
        assert!(lock(&gate.state).floors.is_empty());
    }
}
