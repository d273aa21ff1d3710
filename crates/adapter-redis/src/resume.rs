//! Streams: restoring a session while the stream keeps being delivered.
//!
//! A session is restored in steps: its events are found, then its socket
//! joins the namespace. Meanwhile this server's stream reader, and its own
//! broadcasts, go on delivering entries. Reading the missed events from
//! Redis (`XRANGE`, as Node's adapter does) races with those deliveries: a
//! client recovering under traffic gets an entry twice (read by `XRANGE`
//! and delivered by a reader that lags behind it), gets a new entry before
//! the ones it missed (delivered once its socket is in the namespace,
//! before the missed ones are queued), or never gets one (delivered after
//! `XRANGE` read but before the socket joined). The kill soak
//! (`scripts/soak kill`) saw all three, on about one client in four per
//! failover. And it is slow: after a failover each client reads every
//! entry since its offset from Redis, so 2,000 clients took 30 to 50 s to
//! be back, and on a busy server some timed out and lost their session.
//!
//! [`Gate`] fixes both. Every delivery of an entry to local sockets goes
//! through it, and it:
//! - keeps the latest entries delivered here (as many as the stream keeps):
//!   a session whose offset is among them is restored from memory, with no
//!   round trip and nothing read twice ([`Gate::restore_recent`]); an older
//!   offset is read from Redis as before ([`Gate::begin`], then
//!   [`Gate::replayed`]);
//! - from the restore until [`Gate::resume`], keeps a copy of each entry
//!   delivered that is meant for the session;
//! - [`Gate::resume`] appends those to the missed ones and starts the
//!   socket while no delivery can run;
//! - from then on leaves the socket out of any late delivery of an entry
//!   its replay already had (up to its floor), until the stream reader has
//!   passed it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use socketio::adapter::{BroadcastOptions, MissedPacket, Packet, Room, Sid, Str};

use crate::{lock, streams_wire};

/// How long a restore may take between its start and [`Gate::resume`];
/// one whose connection went away before is dropped after this.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// A stream entry id, ordered as Redis orders them.
type EntryId = (u64, u64);

fn entry_id(id: &str) -> Option<EntryId> {
    let (millis, sequence) = id.split_once('-')?;
    Some((millis.parse().ok()?, sequence.parse().ok()?))
}

/// An event entry delivered here, kept for restores.
struct Recent {
    order: EntryId,
    id: Str,
    data: Str,
    attachments: Vec<Bytes>,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

impl Recent {
    fn meant_for(&self, rooms: &[Room]) -> bool {
        let included = self.rooms.is_empty() || rooms.iter().any(|room| self.rooms.contains(room));
        included && !rooms.iter().any(|room| self.except.contains(room))
    }

    fn missed(&self) -> Option<MissedPacket> {
        let data = socketio::adapter::with_offset(&self.data, &self.id)?;
        Some(MissedPacket::new(Str::from(data), self.attachments.clone()))
    }
}

/// A session being restored.
struct Restoring {
    /// Its rooms, to pick the entries meant for it.
    rooms: Vec<Room>,
    /// Read from Redis: the last entry `XRANGE` read (entries delivered
    /// meanwhile up to it are in the replay already). From memory: `None`
    /// (every entry delivered meanwhile is new to it).
    replayed_through: Option<EntryId>,
    /// Later deliveries of entries up to this one leave the socket out.
    floor: EntryId,
    /// Entries delivered meanwhile that were meant for it.
    delivered: Vec<(EntryId, MissedPacket)>,
    /// At most this many are kept (the stream's length): beyond, the
    /// restore gives up merging, and its client may miss entries.
    limit: usize,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// The latest event entries delivered, in the order they were.
    recent: VecDeque<Recent>,
    /// Restores under way, by private session id.
    restoring: HashMap<String, Restoring>,
    /// Restored sockets and the last entry their replay had.
    floors: HashMap<Sid, EntryId>,
}

impl State {
    fn start_restoring(&mut self, pid: &str, rooms: &[Room], limit: usize) -> &mut Restoring {
        self.restoring
            .retain(|_, restoring| restoring.since.elapsed() < ABANDONED_AFTER);
        self.restoring.insert(
            pid.to_owned(),
            Restoring {
                rooms: rooms.to_vec(),
                replayed_through: None,
                floor: (0, 0),
                delivered: Vec::new(),
                limit,
                since: Instant::now(),
            },
        );
        self.restoring.get_mut(pid).expect("just inserted")
    }
}

/// The deliveries of one namespace's adapter (Streams), with the latest
/// entries kept for restores.
pub(crate) struct Gate {
    state: Mutex<State>,
    /// How many entries [`State::recent`] keeps: the stream's length.
    keep: usize,
}

impl Gate {
    /// A gate keeping the latest `keep` entries delivered.
    pub(crate) fn new(keep: usize) -> Gate {
        Gate {
            state: Mutex::default(),
            keep,
        }
    }

    /// Restores session `pid` (in `rooms`) from the entries kept here, if
    /// its `offset` is among them: the entries after it meant for the
    /// session, in stream order. From now on entries delivered are kept for
    /// it too (at most `limit`). `None`: the offset is older than what is
    /// kept (or not an entry id); read it from Redis.
    pub(crate) fn restore_recent(
        &self,
        pid: &str,
        rooms: &[Room],
        offset: &str,
        limit: usize,
    ) -> Option<Vec<MissedPacket>> {
        let offset = entry_id(offset)?;
        let mut state = lock(&self.state);
        if !state
            .recent
            .iter()
            .rev()
            .any(|recent| recent.order == offset)
        {
            return None;
        }
        let mut after: Vec<&Recent> = state
            .recent
            .iter()
            .filter(|recent| recent.order > offset && recent.meant_for(rooms))
            .collect();
        after.sort_by_key(|recent| recent.order);
        let missed = after.into_iter().filter_map(Recent::missed).collect();
        // The client had everything up to its offset.
        state.start_restoring(pid, rooms, limit).floor = offset;
        Some(missed)
    }

    /// A restore of session `pid` (in `rooms`) from Redis begins: entries
    /// delivered from now on are kept for it (at most `limit`).
    pub(crate) fn begin(&self, pid: &str, rooms: &[Room], limit: usize) {
        lock(&self.state).start_restoring(pid, rooms, limit);
    }

    /// `XRANGE` read the session's entries up to `through`.
    pub(crate) fn replayed(&self, pid: &str, through: &str) {
        if let Some(restoring) = lock(&self.state).restoring.get_mut(pid) {
            let through = entry_id(through).unwrap_or((0, 0));
            restoring.replayed_through = Some(through);
            restoring.floor = through;
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
        let Some(order) = entry_id(id) else {
            return deliver(packet, opts);
        };
        let mut state = lock(&self.state);
        if let (Some(data), false) = (&packet.data, opts.flags.volatile) {
            if self.keep > 0 {
                if state.recent.len() >= self.keep {
                    state.recent.pop_front();
                }
                state.recent.push_back(Recent {
                    order,
                    id: Str::from(id),
                    data: data.clone(),
                    attachments: packet.attachments.clone(),
                    rooms: opts.rooms.clone(),
                    except: opts.except.clone(),
                });
            }
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
        if state.floors.is_empty() {
            return deliver(packet, opts);
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

    /// Starts socket `sid` of session `pid` with `start`: what the restore
    /// found (`missed`) and, after it, what was delivered meanwhile; no
    /// delivery runs until `start` returns.
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
        let mut after: Vec<(EntryId, MissedPacket)> = match restoring.replayed_through {
            Some(through) => restoring
                .delivered
                .into_iter()
                .filter(|(order, _)| *order > through)
                .collect(),
            None => restoring.delivered,
        };
        // The reader's entries come in order; this server's own broadcasts
        // may interleave with them differently.
        after.sort_by_key(|(order, _)| *order);
        after.dedup_by_key(|(order, _)| *order);
        missed.extend(after.into_iter().map(|(_, packet)| packet));
        state.floors.insert(sid, restoring.floor);
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
        let gate = Gate::new(0);
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
        let gate = Gate::new(0);
        gate.begin("pid", &[Room::from("blue")], 100);
        gate.replayed("pid", "1-1");
        let mut red = BroadcastOptions::all();
        red.rooms.push(Room::from("red"));
        deliver(&gate, "1-2", &red, true);
        assert!(resumed(&gate, sid(1), Vec::new()).is_empty());
    }

    #[test]
    fn a_resumed_socket_is_left_out_of_what_its_replay_had_until_the_reader_passes() {
        let gate = Gate::new(0);
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
        let gate = Gate::new(0);
        gate.begin("pid", &[], 100);
        gate.replayed("pid", "1-7");
        resumed(&gate, sid(1), Vec::new());
        gate.forget(sid(1));
        assert!(deliver(&gate, "1-6", &BroadcastOptions::all(), true).is_empty());
    }

    #[test]
    fn a_restore_that_falls_too_far_behind_is_given_up() {
        let gate = Gate::new(0);
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
        let gate = Gate::new(0);
        gate.begin("pid", &[], 100);
        gate.abandon("pid");
        deliver(&gate, "1-2", &BroadcastOptions::all(), true);
        assert!(lock(&gate.state).restoring.is_empty());
        assert!(lock(&gate.state).floors.is_empty());
    }

    #[test]
    fn a_recent_offset_is_restored_from_what_was_delivered() {
        let gate = Gate::new(100);
        let all = BroadcastOptions::all();
        let mut red = BroadcastOptions::all();
        red.rooms.push(Room::from("red"));
        deliver(&gate, "1-1", &all, true);
        deliver(&gate, "1-2", &all, true);
        deliver(&gate, "1-4", &all, false);
        deliver(&gate, "1-3", &all, true);
        deliver(&gate, "1-5", &red, true);
        let missed = gate
            .restore_recent("pid", &[Room::from("blue")], "1-2", 100)
            .expect("the offset is kept");
        let ids: Vec<String> = missed.iter().map(|m| m.data.to_string()).collect();
        assert_eq!(ids, ["[\"tick\",3,\"1-3\"]", "[\"tick\",4,\"1-4\"]"]);
        // Delivered before the socket starts: new to it, whatever its id.
        deliver(&gate, "1-6", &all, true);
        let got = resumed(&gate, sid(1), missed);
        assert_eq!(got.len(), 3);
        assert!(got[2].contains("1-6"));
        // A late delivery of this server's own entry from before the
        // offset: the client had it. One after: it had not.
        let own_room = vec![Room::from(sid(1).as_str())];
        assert_eq!(deliver(&gate, "1-2", &all, false), own_room);
        assert!(deliver(&gate, "1-7", &all, true).is_empty());
    }

    #[test]
    fn an_offset_older_than_what_is_kept_is_read_from_redis() {
        let gate = Gate::new(2);
        let all = BroadcastOptions::all();
        for id in ["1-1", "1-2", "1-3"] {
            deliver(&gate, id, &all, true);
        }
        assert!(gate.restore_recent("pid", &[], "1-1", 100).is_none());
        assert!(gate.restore_recent("pid", &[], "9-9", 100).is_none());
        assert!(gate.restore_recent("pid", &[], "1-2", 100).is_some());
    }
}
