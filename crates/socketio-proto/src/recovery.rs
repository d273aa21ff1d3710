//! Connection state recovery, the server's half: a replay buffer of emitted
//! events and the sessions of recently disconnected sockets, per namespace.
//!
//! # Theory of operation
//!
//! This is Node's `SessionAwareAdapter` (socket.io-adapter, used by Socket.IO
//! 4.6+ when `connectionStateRecovery` is on) as a plain `&mut self` value.
//!
//! * **Recording.** Every EVENT the namespace sends that is neither volatile
//!   nor awaiting an ack goes through [`RecoveryStore::record`] before it is
//!   encoded. The store appends a fresh *offset* (an opaque string id) as the
//!   last argument of the event and keeps the packet in a replay buffer with
//!   the broadcast's target and excluded rooms. A plain `socket.emit` is a
//!   broadcast to the room named by the socket's id. The client remembers the
//!   last offset it saw.
//! * **Persisting.** When a socket leaves for a recoverable reason
//!   ([`is_recoverable`]), [`RecoveryStore::persist`] keeps its sid, private
//!   id (`pid`), rooms and application data under the pid.
//! * **Restoring.** A client that reconnects with `{ pid, offset }` in its
//!   auth gets [`RecoveryStore::restore`]: if the session is still there and
//!   the offset still in the buffer, the socket takes back its sid, pid, rooms
//!   and data and receives the packets it missed: those recorded after the
//!   offset whose rooms match the session's, in order. Either way the session
//!   entry is consumed (see below).
//! * **Expiry.** A session or packet lives `max_disconnection_duration` after
//!   its disconnection or recording: it is alive while `at + duration > now`.
//!   Node sweeps every 60 s; here [`RecoveryStore::poll_timeout`] gives the
//!   exact next deadline and [`RecoveryStore::handle_timeout`] sweeps. Every
//!   other call sweeps first too, so answers never depend on how punctually
//!   the driver called `handle_timeout`.
//!
//! Offsets are `{prefix}{counter}`, the counter in lowercase base 36, counting
//! up from 0. The caller supplies the prefix (random text per server run), so
//! offsets handed out by an earlier run never match. Packets only ever leave
//! the buffer at its front (expiry is in recording order, the size bound drops
//! the oldest), so the buffer always holds a contiguous range of counters
//! ending at the latest one: finding an offset is a strict parse plus one
//! subtraction, O(1), and a string that is not exactly an offset this store
//! issued matches nothing.
//!
//! Memory is bounded by [`RecoveryConfig::max_packets`] and
//! [`RecoveryConfig::max_sessions`] whatever the inputs; the size of each
//! packet and session is the application's. What a client sends
//! (`pid`, `offset`) is only looked up, never stored.
//!
//! Deviations from Node, on purpose:
//!
//! * A restore consumes the persisted session, successful or not (Node keeps
//!   it until it expires). The restored socket is live again and will be
//!   persisted anew when it next disconnects; keeping the old entry would let
//!   a second connection take over the same sid. When the offset is unknown,
//!   the client is given a fresh session, so the old entry is useless.
//! * Expiry is exact instead of a 60 s sweep, and the buffer and the session
//!   table are bounded.
//!
//! Instants are expected to be non-decreasing across calls; an earlier one
//! counts as the latest seen, so the buffer stays in time order.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
use engineio_proto::{Instant, Sid, Str};

use crate::rooms::Room;
use crate::server::DisconnectReason;

/// Recovery settings, with Node's defaults where Node has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected session, and an emitted packet, are kept.
    /// Node: 2 minutes.
    pub max_disconnection_duration: Duration,
    /// The most packets the replay buffer holds; the oldest is dropped first.
    /// Node has no bound. Default: 10,000.
    pub max_packets: usize,
    /// The most persisted sessions; when full, the one that disconnected
    /// first is dropped. Node has no bound. Default: 100,000.
    pub max_sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            max_packets: 10_000,
            max_sessions: 100_000,
        }
    }
}

/// Why [`RecoveryStore::record`] refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The event data is not a JSON array (`[` … `]`).
    #[error("event data is not a json array")]
    NotAnArray,
}

/// A recorded event: its data with the offset appended, and the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// The JSON array to send instead of the original one: the same
    /// arguments, then the offset as a JSON string.
    pub data: Str,
    /// The offset, unescaped.
    pub offset: Str,
}

/// An event a restored socket missed: send it as an EVENT of the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissedPacket {
    /// The JSON array as it was sent, offset included.
    pub data: Str,
    /// Binary attachments the placeholders in `data` refer to.
    pub attachments: Vec<Bytes>,
}

impl MissedPacket {
    /// A missed event: `data` is its JSON array, offset included, and
    /// `attachments` the binary its placeholders refer to (for adapters
    /// that keep events themselves, such as a Redis Streams adapter).
    pub fn new(data: Str, attachments: Vec<Bytes>) -> MissedPacket {
        MissedPacket { data, attachments }
    }
}

/// An event's JSON array `data` with `offset` appended as its last
/// argument (how a client learns its offset); `None` when `data` is not an
/// array. For adapters that give events their own offsets.
pub fn with_offset(data: &str, offset: &str) -> Option<String> {
    append_to_array(data, offset)
}

/// A restored session: the socket takes back its identity and state, then
/// receives `missed` in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored<D> {
    /// The socket id it had.
    pub sid: Sid,
    /// Its private id, unchanged.
    pub pid: Str,
    /// The rooms it was in, as persisted.
    pub rooms: Vec<Room>,
    /// The application's data, as persisted.
    pub data: D,
    /// The events recorded after the client's offset that were meant for it.
    pub missed: Vec<MissedPacket>,
}

impl<D> Restored<D> {
    /// A session restored from elsewhere (an adapter that keeps sessions).
    pub fn new(
        sid: Sid,
        pid: Str,
        rooms: Vec<Room>,
        data: D,
        missed: Vec<MissedPacket>,
    ) -> Restored<D> {
        Restored {
            sid,
            pid,
            rooms,
            data,
            missed,
        }
    }
}

/// Whether Node persists a session that left for `reason`: transport error
/// or close, forced close, ping timeout, server shutdown or forced server
/// close; not a namespace disconnect by either side, nor a parse error.
pub fn is_recoverable(reason: &DisconnectReason) -> bool {
    // Node's RECOVERABLE_DISCONNECT_REASONS, matched on its own strings so a
    // reason added later is classified by the string it maps to.
    matches!(
        reason.as_node_str(),
        "transport error"
            | "transport close"
            | "forced close"
            | "ping timeout"
            | "server shutting down"
            | "forced server close"
    )
}

/// A packet of the replay buffer. Its counter is implied by its position.
#[derive(Debug, Clone)]
struct StoredPacket {
    at: Instant,
    data: Str,
    attachments: Vec<Bytes>,
    /// Target rooms, sorted and deduplicated; empty means everyone.
    rooms: Vec<Room>,
    /// Excluded rooms, sorted and deduplicated.
    except: Vec<Room>,
}

impl StoredPacket {
    /// Node's `shouldIncludePacket`.
    fn is_for(&self, session_rooms: &[Room]) -> bool {
        let included = self.rooms.is_empty()
            || session_rooms
                .iter()
                .any(|r| self.rooms.binary_search(r).is_ok());
        included
            && !session_rooms
                .iter()
                .any(|r| self.except.binary_search(r).is_ok())
    }
}

#[derive(Debug, Clone)]
struct StoredSession<D> {
    sid: Sid,
    rooms: Vec<Room>,
    data: D,
    disconnected_at: Instant,
    /// Key in `RecoveryStore::session_order`.
    seq: u64,
}

/// The recovery bookkeeping of one namespace. See the [module docs](self).
///
/// `D` is the application's per-socket data (Node's `socket.data`), kept
/// opaque and handed back by value on restore.
///
/// ```
/// use core::time::Duration;
/// use engineio_proto::{Instant, Sid, Str};
/// use socketio_proto::recovery::{RecoveryConfig, RecoveryStore};
/// use socketio_proto::rooms::Room;
///
/// let mut store = RecoveryStore::new(RecoveryConfig::default(), Str::from("run1-"));
/// let sid = Sid::parse("abc").unwrap();
/// let t0 = Instant::ZERO;
///
/// // `socket.emit("hello", 1)`: a broadcast to the socket's own room.
/// let own = [Room::from("abc")];
/// let first = store.record(t0, &Str::from(r#"["hello",1]"#), &[], &own, &[]).unwrap();
/// assert_eq!(first.data.as_str(), r#"["hello",1,"run1-0"]"#);
///
/// // The transport drops; the socket is persisted.
/// store.persist(t0, Str::from("pid-1"), sid, vec![Room::from("abc")], "user data");
/// // `io.emit("news")` while it is away.
/// store.record(t0, &Str::from(r#"["news"]"#), &[], &[], &[]).unwrap();
///
/// // It comes back within the window with the last offset it saw.
/// let later = t0 + Duration::from_secs(30);
/// let restored = store.restore(later, "pid-1", &first.offset).unwrap();
/// assert_eq!(restored.sid, sid);
/// assert_eq!(restored.data, "user data");
/// assert_eq!(restored.missed.len(), 1);
/// assert_eq!(restored.missed[0].data.as_str(), r#"["news","run1-1"]"#);
/// ```
#[derive(Debug, Clone)]
pub struct RecoveryStore<D> {
    config: RecoveryConfig,
    prefix: Str,
    /// The counter of the next offset.
    next_counter: u64,
    /// Recorded packets, oldest first; counters `next_counter - len ..
    /// next_counter` (wrapping).
    packets: VecDeque<StoredPacket>,
    sessions: BTreeMap<Str, StoredSession<D>>,
    /// Persisted sessions in disconnection order: sequence number → pid.
    session_order: BTreeMap<u64, Str>,
    next_seq: u64,
    /// The latest instant seen; earlier ones are read as this.
    clock: Instant,
}

impl<D> RecoveryStore<D> {
    /// An empty store. `offset_prefix` starts every offset it issues: give it
    /// random text per server run (a few random base64 characters), so
    /// offsets a client kept from another run cannot match. Allocates nothing
    /// until the first record or persist.
    pub fn new(config: RecoveryConfig, offset_prefix: Str) -> Self {
        RecoveryStore {
            config,
            prefix: offset_prefix,
            next_counter: 0,
            packets: VecDeque::new(),
            sessions: BTreeMap::new(),
            session_order: BTreeMap::new(),
            next_seq: 0,
            clock: Instant::ZERO,
        }
    }

    /// The settings the store was built with.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Gives an EVENT an offset and keeps it for replay. Call it for every
    /// EVENT the namespace sends that is not volatile and expects no ack,
    /// before encoding it, then send the returned `data` instead of `data`.
    ///
    /// `data` is the event's JSON array (`["name", ...args]`, as the codec
    /// produces it; only its brackets are checked); `attachments` its binary
    /// attachments. `rooms` are the broadcast's target rooms (empty: the whole
    /// namespace; `socket.emit` targets the socket's own room) and `except`
    /// its excluded rooms. The oldest packet is dropped when the buffer is
    /// full. Moves [`poll_timeout`](Self::poll_timeout).
    pub fn record(
        &mut self,
        now: Instant,
        data: &Str,
        attachments: &[Bytes],
        rooms: &[Room],
        except: &[Room],
    ) -> Result<Recorded, RecordError> {
        let now = self.sweep(now);
        let counter = self.next_counter;
        let mut offset = String::with_capacity(self.prefix.len() + 13);
        offset.push_str(&self.prefix);
        push_base36(&mut offset, counter);
        let with_offset = append_to_array(data, &offset).ok_or(RecordError::NotAnArray)?;
        // Wrapping keeps the counter arithmetic total; 2^64 records do not
        // happen before the buffer has long forgotten counter 0.
        self.next_counter = counter.wrapping_add(1);
        let data = Str::from(with_offset);
        if self.config.max_packets > 0 {
            while self.packets.len() >= self.config.max_packets {
                self.packets.pop_front();
            }
            self.packets.push_back(StoredPacket {
                at: now,
                data: data.clone(),
                attachments: attachments.to_vec(),
                rooms: sorted_set(rooms),
                except: sorted_set(except),
            });
        } else {
            // Nothing kept; the buffer is empty and stays contiguous.
            self.packets.clear();
        }
        Ok(Recorded {
            data,
            offset: Str::from(offset),
        })
    }

    /// Keeps the session of a socket that left for a recoverable reason
    /// ([`is_recoverable`]) under its private id `pid`, until `now +
    /// max_disconnection_duration` or a [`restore`](Self::restore). `rooms`
    /// are the rooms it was in, its own (named by its sid) included, as
    /// Node's `socket.rooms`. A session already kept under `pid` is replaced;
    /// when the table is full, the session that disconnected first is
    /// dropped. Moves [`poll_timeout`](Self::poll_timeout).
    pub fn persist(&mut self, now: Instant, pid: Str, sid: Sid, rooms: Vec<Room>, data: D) {
        let now = self.sweep(now);
        if let Some(old) = self.sessions.remove(pid.as_str()) {
            self.session_order.remove(&old.seq);
        }
        if self.config.max_sessions == 0 {
            return;
        }
        while self.sessions.len() >= self.config.max_sessions {
            let Some((_, oldest)) = self.session_order.pop_first() else {
                break;
            };
            self.sessions.remove(oldest.as_str());
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.session_order.insert(seq, pid.clone());
        self.sessions.insert(
            pid,
            StoredSession {
                sid,
                rooms,
                data,
                disconnected_at: now,
                seq,
            },
        );
    }

    /// Answers a client that connects with `pid` and `offset` in its auth.
    ///
    /// `Some` when a session is kept under `pid` and `offset` is still in the
    /// buffer: give the socket the returned sid, pid, rooms and data, then
    /// send it `missed` in order. `None` otherwise: connect the client as a
    /// new socket. Both arguments come from the peer; any text is fine. The
    /// session entry is consumed either way (see the module docs). Moves
    /// [`poll_timeout`](Self::poll_timeout).
    pub fn restore(&mut self, now: Instant, pid: &str, offset: &str) -> Option<Restored<D>> {
        self.sweep(now);
        let (pid, session) = self.sessions.remove_entry(pid)?;
        self.session_order.remove(&session.seq);
        let index = self.find_offset(offset)?;
        let missed = self
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| p.is_for(&session.rooms))
            .map(|p| MissedPacket {
                data: p.data.clone(),
                attachments: p.attachments.clone(),
            })
            .collect();
        Some(Restored {
            sid: session.sid,
            pid,
            rooms: session.rooms,
            data: session.data,
            missed,
        })
    }

    /// Drops the sessions and packets whose time is up. Safe to call early or
    /// late; call it at [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sweep(now);
    }

    /// When the oldest packet or session expires, or `None` when the store
    /// is empty. Changes after every other call.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ttl = self.config.max_disconnection_duration;
        let packet = self.packets.front().map(|p| p.at + ttl);
        let session = self
            .session_order
            .first_key_value()
            .and_then(|(_, pid)| self.sessions.get(pid.as_str()))
            .map(|s| s.disconnected_at + ttl);
        match (packet, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    /// How many sessions are kept.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many packets the replay buffer holds.
    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// Whether a session is kept under `pid` (it may expire at the next call
    /// that takes an instant).
    pub fn contains_session(&self, pid: &str) -> bool {
        self.sessions.contains_key(pid)
    }

    /// Advances the clock to `now` (never back) and drops what expired by
    /// then. Returns the clock.
    fn sweep(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        let now = self.clock;
        let ttl = self.config.max_disconnection_duration;
        while self.packets.front().is_some_and(|p| p.at + ttl <= now) {
            self.packets.pop_front();
        }
        while let Some(entry) = self.session_order.first_entry() {
            let expired = self
                .sessions
                .get(entry.get().as_str())
                .is_none_or(|s| s.disconnected_at + ttl <= now);
            if !expired {
                break;
            }
            let pid = entry.remove();
            self.sessions.remove(pid.as_str());
        }
        now
    }

    /// The buffer index of the packet `offset` names, if it is still there.
    fn find_offset(&self, offset: &str) -> Option<usize> {
        let counter = parse_base36(offset.strip_prefix(self.prefix.as_str())?)?;
        let len = self.packets.len() as u64;
        let first = self.next_counter.wrapping_sub(len);
        let index = counter.wrapping_sub(first);
        (index < len).then_some(index as usize)
    }
}

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Longest base-36 form of a `u64` (`3w5e11264sgsf`).
const MAX_BASE36_LEN: usize = 13;

fn push_base36(out: &mut String, mut n: u64) {
    let mut digits = [0u8; MAX_BASE36_LEN];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = BASE36[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// The inverse of [`push_base36`], accepting only its exact output: no sign,
/// no uppercase, no leading zero, no overflow.
fn parse_base36(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_BASE36_LEN || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        n.checked_mul(36)?.checked_add(u64::from(digit))
    })
}

/// The JSON array `data` with the JSON string `value` appended, or `None`
/// when `data` is not bracketed as an array. Trailing whitespace is dropped.
fn append_to_array(data: &str, value: &str) -> Option<String> {
    const JSON_WS: [char; 4] = [' ', '\t', '\n', '\r'];
    let body = data
        .trim_end_matches(JSON_WS)
        .strip_suffix(']')?
        .trim_end_matches(JSON_WS);
    if !data.trim_start_matches(JSON_WS).starts_with('[') {
        return None;
    }
    // Serializing a `str` cannot fail.
    let escaped = serde_json::to_string(value).ok()?;
    let mut out = String::with_capacity(body.len() + escaped.len() + 2);
    out.push_str(body);
    // No JSON value ends with `[`, so only an empty array does.
    if !body.ends_with('[') {
        out.push(',');
    }
    out.push_str(&escaped);
    out.push(']');
    Some(out)
}

fn sorted_set(rooms: &[Room]) -> Vec<Room> {
    let mut set = rooms.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use engineio_proto::CloseReason;

    const TTL: Duration = Duration::from_secs(120);

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn room(s: &str) -> Room {
        Room::from(s)
    }

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap()
    }

    fn store() -> RecoveryStore<u32> {
        RecoveryStore::new(RecoveryConfig::default(), Str::from("p-"))
    }

    fn config(max_packets: usize, max_sessions: usize) -> RecoveryConfig {
        RecoveryConfig {
            max_disconnection_duration: TTL,
            max_packets,
            max_sessions,
        }
    }

    fn rec(
        store: &mut RecoveryStore<u32>,
        now: Instant,
        data: &str,
        to: &[&str],
        except: &[&str],
    ) -> Recorded {
        let to: Vec<Room> = to.iter().map(|r| room(r)).collect();
        let except: Vec<Room> = except.iter().map(|r| room(r)).collect();
        store
            .record(now, &Str::from(data), &[], &to, &except)
            .unwrap()
    }

    fn missed_data(restored: &Restored<u32>) -> Vec<&str> {
        restored.missed.iter().map(|m| m.data.as_str()).collect()
    }

    #[test]
    fn appends_the_offset_as_the_last_argument() {
        let mut s = store();
        let cases = [
            (r#"["ev",1]"#, r#"["ev",1,"p-0"]"#),
            ("[]", r#"["p-0"]"#),
            ("[ ]", r#"["p-0"]"#),
            ("[\n]\n", r#"["p-0"]"#),
            ("[\"ev\",[]] \t\r\n", r#"["ev",[],"p-0"]"#),
            (r#"["ev",{"a":[1]} ]"#, r#"["ev",{"a":[1]},"p-0"]"#),
            (r#"["ev","]"]"#, r#"["ev","]","p-0"]"#),
        ];
        for (input, expected) in cases {
            let mut s2 = store();
            let got = rec(&mut s2, ms(0), input, &[], &[]);
            assert_eq!(got.data.as_str(), expected, "{input:?}");
            assert_eq!(got.offset.as_str(), "p-0");
            let parsed: serde_json::Value = serde_json::from_str(&got.data).unwrap();
            assert_eq!(parsed.as_array().unwrap().last().unwrap(), "p-0");
        }
        // Counters count up in base 36.
        let offsets: Vec<Str> = (0..40)
            .map(|_| rec(&mut s, ms(0), "[]", &[], &[]).offset)
            .collect();
        assert_eq!(offsets[9].as_str(), "p-9");
        assert_eq!(offsets[10].as_str(), "p-a");
        assert_eq!(offsets[35].as_str(), "p-z");
        assert_eq!(offsets[36].as_str(), "p-10");
    }

    #[test]
    fn escapes_the_prefix() {
        let prefix = "q\"\\\n\u{1}é/";
        let mut s: RecoveryStore<u32> =
            RecoveryStore::new(RecoveryConfig::default(), Str::from(prefix));
        let got = s
            .record(ms(0), &Str::from(r#"["ev"]"#), &[], &[], &[])
            .unwrap();
        let expected_offset = prefix.to_string() + "0";
        assert_eq!(got.offset.as_str(), expected_offset);
        let parsed: serde_json::Value = serde_json::from_str(&got.data).unwrap();
        assert_eq!(parsed, serde_json::json!(["ev", expected_offset]));
        // And it is found again.
        s.persist(ms(0), Str::from("pid"), sid("a"), vec![], 1);
        assert!(s.restore(ms(1), "pid", &expected_offset).is_some());
    }

    #[test]
    fn refuses_data_that_is_not_an_array() {
        let mut s = store();
        for bad in ["", " ", "{}", "\"x\"", "[", "]", "1", "[1", "1]", "[1] x"] {
            assert_eq!(
                s.record(ms(0), &Str::from(bad), &[], &[], &[]),
                Err(RecordError::NotAnArray),
                "{bad:?}"
            );
        }
        // Nothing recorded, no counter consumed.
        assert_eq!(s.packet_count(), 0);
        assert_eq!(rec(&mut s, ms(0), "[]", &[], &[]).offset.as_str(), "p-0");
    }

    #[test]
    fn restores_a_session_with_what_it_missed() {
        let mut s = store();
        let seen = rec(&mut s, ms(0), r#"["a"]"#, &["abc"], &[]);
        s.persist(
            ms(10),
            Str::from("pid"),
            sid("abc"),
            vec![room("abc"), room("chat")],
            42,
        );
        assert_eq!(s.session_count(), 1);
        let attachment = Bytes::from_static(b"\x01\x02");
        s.record(
            ms(20),
            &Str::from(r#"["bin",{"_placeholder":true,"num":0}]"#),
            core::slice::from_ref(&attachment),
            &[],
            &[],
        )
        .unwrap();
        let r = s.restore(ms(30), "pid", &seen.offset).unwrap();
        assert_eq!(r.sid, sid("abc"));
        assert_eq!(r.pid.as_str(), "pid");
        assert_eq!(r.rooms, vec![room("abc"), room("chat")]);
        assert_eq!(r.data, 42);
        assert_eq!(
            r.missed,
            vec![MissedPacket {
                data: Str::from(r#"["bin",{"_placeholder":true,"num":0},"p-1"]"#),
                attachments: vec![attachment],
            }]
        );
        assert_eq!(s.session_count(), 0);
        // The buffer is untouched by restores.
        assert_eq!(s.packet_count(), 2);
    }

    #[test]
    fn missed_packets_follow_rooms_and_order() {
        let mut s = store();
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(
            ms(0),
            Str::from("pid"),
            sid("me"),
            vec![room("me"), room("a")],
            0,
        );
        rec(&mut s, ms(1), "[1]", &[], &[]); // everyone
        rec(&mut s, ms(2), "[2]", &["a"], &[]); // a room it is in
        rec(&mut s, ms(3), "[3]", &["b"], &[]); // a room it is not in
        rec(&mut s, ms(4), "[4]", &["b", "me"], &[]); // any target room suffices
        rec(&mut s, ms(5), "[5]", &[], &["a"]); // everyone but a
        rec(&mut s, ms(6), "[6]", &["a"], &["b"]); // a but not b
        rec(&mut s, ms(7), "[7]", &["a"], &["me"]); // excluded by its own room
        rec(&mut s, ms(8), "[8]", &["other"], &[]); // another socket's emit
        rec(&mut s, ms(9), "[9]", &["me", "me"], &[]); // duplicates are fine
        let r = s.restore(ms(10), "pid", &seen.offset).unwrap();
        assert_eq!(
            missed_data(&r),
            [
                r#"[1,"p-1"]"#,
                r#"[2,"p-2"]"#,
                r#"[4,"p-4"]"#,
                r#"[6,"p-6"]"#,
                r#"[9,"p-9"]"#
            ]
        );
    }

    #[test]
    fn latest_offset_means_nothing_missed() {
        let mut s = store();
        let last = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        let r = s.restore(ms(1), "pid", &last.offset).unwrap();
        assert!(r.missed.is_empty());
    }

    #[test]
    fn unknown_pid_restores_nothing_and_keeps_other_sessions() {
        let mut s = store();
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        assert!(s.restore(ms(1), "other", &seen.offset).is_none());
        assert!(s.restore(ms(1), "", &seen.offset).is_none());
        assert_eq!(s.session_count(), 1);
        assert!(s.contains_session("pid"));
    }

    #[test]
    fn unknown_offset_restores_nothing_and_drops_the_session() {
        let mut s = store();
        rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        assert!(s.restore(ms(1), "pid", "p-5").is_none());
        assert_eq!(s.session_count(), 0);
        assert!(!s.contains_session("pid"));
    }

    #[test]
    fn restore_is_one_shot() {
        let mut s = store();
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 7);
        assert!(s.restore(ms(1), "pid", &seen.offset).is_some());
        assert!(s.restore(ms(1), "pid", &seen.offset).is_none());
        // Persisted again after the next disconnect, restorable again.
        s.persist(ms(2), Str::from("pid"), sid("me"), vec![], 8);
        assert_eq!(s.restore(ms(3), "pid", &seen.offset).unwrap().data, 8);
    }

    #[test]
    fn persisting_a_pid_again_replaces_it() {
        let mut s = store();
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("one"), vec![], 1);
        s.persist(ms(5), Str::from("pid"), sid("two"), vec![], 2);
        assert_eq!(s.session_count(), 1);
        // The replacement's own deadline counts.
        assert_eq!(s.poll_timeout(), Some(ms(0) + TTL));
        s.handle_timeout(ms(0) + TTL);
        assert_eq!(s.poll_timeout(), Some(ms(5) + TTL));
        let r = s.restore(ms(6) + TTL - Duration::from_millis(2), "pid", &seen.offset);
        // The packet expired with the first deadline, so the offset is gone.
        assert!(r.is_none());
        s.persist(ms(200_000), Str::from("pid"), sid("two"), vec![], 2);
        let seen = rec(&mut s, ms(200_000), "[0]", &[], &[]);
        assert_eq!(
            s.restore(ms(200_001), "pid", &seen.offset).unwrap().sid,
            sid("two")
        );
    }

    #[test]
    fn an_expired_session_is_not_restored() {
        for (at, restores) in [(119_999, true), (120_000, false), (500_000, false)] {
            let mut s = store();
            s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
            // A packet recorded later, so the offset itself is still there.
            let seen = rec(&mut s, ms(1_000), "[0]", &[], &[]);
            let r = s.restore(ms(at), "pid", &seen.offset);
            assert_eq!(r.is_some(), restores, "at {at}");
            assert_eq!(s.session_count(), 0);
        }
    }

    #[test]
    fn timers_fire_at_exact_deadlines() {
        let mut s = store();
        assert_eq!(s.poll_timeout(), None);
        rec(&mut s, ms(1_000), "[0]", &[], &[]);
        s.persist(ms(1_500), Str::from("pid"), sid("me"), vec![], 0);
        rec(&mut s, ms(2_000), "[1]", &[], &[]);
        assert_eq!(s.poll_timeout(), Some(ms(121_000)));

        // Early calls change nothing.
        s.handle_timeout(ms(120_999));
        assert_eq!((s.packet_count(), s.session_count()), (2, 1));
        assert_eq!(s.poll_timeout(), Some(ms(121_000)));

        s.handle_timeout(ms(121_000));
        assert_eq!((s.packet_count(), s.session_count()), (1, 1));
        assert_eq!(s.poll_timeout(), Some(ms(121_500)));

        s.handle_timeout(ms(121_500));
        assert_eq!((s.packet_count(), s.session_count()), (1, 0));
        assert_eq!(s.poll_timeout(), Some(ms(122_000)));

        s.handle_timeout(ms(122_000));
        assert_eq!((s.packet_count(), s.session_count()), (0, 0));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn late_timeouts_sweep_everything_due() {
        let mut s = store();
        for i in 0..10 {
            rec(&mut s, ms(i * 1_000), "[0]", &[], &[]);
            s.persist(
                ms(i * 1_000),
                Str::from(i.to_string()),
                sid("me"),
                vec![],
                0,
            );
        }
        s.handle_timeout(ms(125_500));
        assert_eq!((s.packet_count(), s.session_count()), (4, 4));
        assert_eq!(s.poll_timeout(), Some(ms(126_000)));
    }

    #[test]
    fn the_buffer_bound_drops_the_oldest() {
        let mut s = RecoveryStore::new(config(3, 10), Str::from("p-"));
        let offsets: Vec<Str> = (0..5)
            .map(|i| rec(&mut s, ms(i), "[0]", &[], &[]).offset)
            .collect();
        assert_eq!(s.packet_count(), 3);
        for (i, offset) in offsets.iter().enumerate() {
            s.persist(ms(10), Str::from("pid"), sid("me"), vec![], 0);
            let r = s.restore(ms(10), "pid", offset);
            if i < 2 {
                assert!(r.is_none(), "offset {i} was dropped");
            } else {
                assert_eq!(r.unwrap().missed.len(), 4 - i);
            }
        }
        // The expiry deadline follows the oldest packet kept.
        assert_eq!(s.poll_timeout(), Some(ms(2) + TTL));
    }

    #[test]
    fn a_zero_buffer_keeps_nothing_but_still_appends_offsets() {
        let mut s = RecoveryStore::new(config(0, 10), Str::from("p-"));
        let a = rec(&mut s, ms(0), "[]", &[], &[]);
        let b = rec(&mut s, ms(0), "[]", &[], &[]);
        assert_eq!((a.offset.as_str(), b.offset.as_str()), ("p-0", "p-1"));
        assert_eq!(s.packet_count(), 0);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        assert!(s.restore(ms(0), "pid", &b.offset).is_none());
    }

    #[test]
    fn the_session_bound_drops_the_oldest() {
        let mut s = RecoveryStore::new(config(10, 2), Str::from("p-"));
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        s.persist(ms(1), Str::from("a"), sid("a"), vec![], 1);
        s.persist(ms(2), Str::from("b"), sid("b"), vec![], 2);
        // Re-persisting an existing pid needs no eviction.
        s.persist(ms(3), Str::from("a"), sid("a"), vec![], 3);
        assert_eq!(s.session_count(), 2);
        // `b` is now the oldest.
        s.persist(ms(4), Str::from("c"), sid("c"), vec![], 4);
        assert_eq!(s.session_count(), 2);
        assert!(!s.contains_session("b"));
        assert_eq!(s.restore(ms(5), "a", &seen.offset).unwrap().data, 3);
        assert_eq!(s.restore(ms(5), "c", &seen.offset).unwrap().data, 4);

        let mut none = RecoveryStore::new(config(10, 0), Str::from("p-"));
        none.persist(ms(0), Str::from("a"), sid("a"), vec![], 1);
        assert_eq!(none.session_count(), 0);
        assert_eq!(none.poll_timeout(), None);
    }

    #[test]
    fn foreign_and_garbage_offsets_match_nothing() {
        let mut s = store();
        for _ in 0..40 {
            rec(&mut s, ms(0), "[0]", &[], &[]);
        }
        let garbage = [
            "",
            "p-",
            "p",
            "q-0",
            "P-0",
            "p-00",
            "p-01",
            "p-A",
            "p-+1",
            "p--1",
            "p- 1",
            "p-1 ",
            "p-10000000000000",
            "p-zzzzzzzzzzzzz",
            "p-3w5e11264sgsf",
            "p-3w5e11264sgsg",
            "p-é",
            "p-\u{0}",
            "x-p-1",
            "p-14",
            "p-1g",
        ];
        for offset in garbage {
            s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
            assert!(s.restore(ms(0), "pid", offset).is_none(), "{offset:?}");
        }
        // Sanity: genuine ones still work.
        for offset in ["p-0", "p-13"] {
            s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
            assert!(s.restore(ms(0), "pid", offset).is_some(), "{offset:?}");
        }
    }

    #[test]
    fn base36_round_trips_at_the_edges() {
        for n in [0, 1, 35, 36, 1_295, 1_296, u64::MAX - 1, u64::MAX] {
            let mut out = String::new();
            push_base36(&mut out, n);
            assert_eq!(parse_base36(&out), Some(n), "{out}");
        }
        let mut out = String::new();
        push_base36(&mut out, u64::MAX);
        assert_eq!(out, "3w5e11264sgsf");
    }

    #[test]
    fn time_going_backwards_counts_as_the_latest_instant() {
        let mut s = store();
        rec(&mut s, ms(10_000), "[0]", &[], &[]);
        let seen = rec(&mut s, ms(5_000), "[1]", &[], &[]);
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        assert_eq!(s.poll_timeout(), Some(ms(10_000) + TTL));
        s.handle_timeout(ms(0));
        assert_eq!(s.packet_count(), 2);
        s.handle_timeout(ms(10_000) + TTL);
        assert_eq!((s.packet_count(), s.session_count()), (0, 0));
        assert!(s.restore(ms(1), "pid", &seen.offset).is_none());
    }

    #[test]
    fn zero_duration_keeps_nothing_past_the_instant() {
        let mut c = config(10, 10);
        c.max_disconnection_duration = Duration::ZERO;
        let mut s: RecoveryStore<u32> = RecoveryStore::new(c, Str::from("p-"));
        let seen = rec(&mut s, ms(0), "[0]", &[], &[]);
        assert_eq!(s.poll_timeout(), Some(ms(0)));
        s.persist(ms(0), Str::from("pid"), sid("me"), vec![], 0);
        assert!(s.restore(ms(0), "pid", &seen.offset).is_none());
        assert_eq!(
            (s.packet_count(), s.session_count(), s.poll_timeout()),
            (0, 0, None)
        );
    }

    #[test]
    fn recoverable_reasons_are_nodes() {
        use engineio_proto::TransportError;
        let yes = [
            DisconnectReason::ForcedServerClose,
            DisconnectReason::Transport(CloseReason::PingTimeout),
            DisconnectReason::Transport(CloseReason::PeerClose),
            DisconnectReason::Transport(CloseReason::TransportClose),
            DisconnectReason::Transport(CloseReason::ForcedClose),
            DisconnectReason::Transport(CloseReason::PayloadTooLarge),
            DisconnectReason::Transport(CloseReason::TransportError(
                TransportError::OverlappingPoll,
            )),
        ];
        for reason in &yes {
            assert!(is_recoverable(reason), "{reason:?}");
        }
        let no = [
            DisconnectReason::ClientNamespaceDisconnect,
            DisconnectReason::ServerNamespaceDisconnect,
        ];
        for reason in &no {
            assert!(!is_recoverable(reason), "{reason:?}");
        }
    }
}
