//! Property tests of the recovery store: random sequences of records,
//! persists, restores, sweeps and clock moves (including backwards) run
//! against a naive model (two plain vectors scanned linearly, offsets compared
//! as strings, JSON appended through `serde_json::Value`). After every step
//! the counts and the next deadline must agree with the model, and every
//! restore must return exactly what the model returns.

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::{Instant, Sid, Str};
use proptest::collection::vec;
use proptest::prelude::*;
use socketio_proto::recovery::{RecoveryConfig, RecoveryStore, Restored};
use socketio_proto::rooms::Room;

const TTL_MS: u64 = 1_000;

/// Rooms packets target and sessions are in; `s0`..`s3` double as the
/// sockets' own rooms.
const ROOMS: [&str; 6] = ["a", "b", "s0", "s1", "s2", "s3"];

/// Pids `0..PIDS` are persisted; `PIDS` itself never is.
const PIDS: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Move the caller's clock by this many milliseconds (may be negative:
    /// the store must read it as the latest instant seen).
    Advance(i64),
    /// Move the caller's clock to the store's next deadline and sweep, as a
    /// driver does.
    Deadline,
    /// Record an event with `args` numeric arguments (0 gives `[]`),
    /// `attachments` binary attachments, and room masks over `ROOMS`.
    Record {
        args: u8,
        attachments: u8,
        to: u8,
        except: u8,
        trailing_ws: bool,
    },
    Persist {
        pid: u8,
        rooms: u8,
        data: u32,
    },
    Restore {
        pid: u8,
        offset: OffsetChoice,
    },
    Timeout,
}

#[derive(Debug, Clone)]
enum OffsetChoice {
    /// One of the offsets issued so far, counted back from the latest
    /// (mostly one of the last 8), or an unknown one when none was.
    Issued(usize),
    /// Any text at all.
    Text(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Multiples of 50 ms, so instants often land exactly on deadlines.
        3 => (-1i64..6).prop_map(|k| Op::Advance(k * 50)),
        1 => Just(Op::Deadline),
        5 => (0u8..4, 0u8..3, any::<u8>(), any::<u8>(), any::<bool>()).prop_map(
            |(args, attachments, to, except, trailing_ws)| {
                // Mostly broadcasts to everyone, with no exclusions.
                let to = if to & 0x80 == 0 { 0 } else { to & 0x3f };
                let except = if except & 0xc0 == 0 { except & 0x3f } else { 0 };
                Op::Record { args, attachments, to, except, trailing_ws }
            }
        ),
        4 => (0..PIDS, any::<u8>(), any::<u32>())
            .prop_map(|(pid, rooms, data)| Op::Persist { pid, rooms, data }),
        3 => (0..=PIDS, offset_choice()).prop_map(|(pid, offset)| Op::Restore { pid, offset }),
        1 => Just(Op::Timeout),
    ]
}

fn offset_choice() -> impl Strategy<Value = OffsetChoice> {
    prop_oneof![
        8 => any::<usize>().prop_map(OffsetChoice::Issued),
        1 => "(p-|\\\"|é)?[0-9a-zA-Z+ -]{0,4}".prop_map(OffsetChoice::Text),
        1 => any::<String>().prop_map(OffsetChoice::Text),
    ]
}

fn rooms_of(mask: u8) -> Vec<String> {
    ROOMS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, r)| (*r).to_owned())
        .collect()
}

fn to_rooms(names: &[String]) -> Vec<Room> {
    names.iter().map(|r| Room::from(r.as_str())).collect()
}

#[derive(Debug, Clone)]
struct ModelPacket {
    offset: String,
    at: u64,
    data: String,
    attachments: Vec<Bytes>,
    to: BTreeSet<String>,
    except: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct ModelSession {
    pid: String,
    sid: String,
    rooms: Vec<String>,
    data: u32,
    at: u64,
}

/// What a restore returns, in plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    sid: String,
    pid: String,
    rooms: Vec<String>,
    data: u32,
    missed: Vec<(String, Vec<Bytes>)>,
}

impl From<Restored<u32>> for Answer {
    fn from(r: Restored<u32>) -> Answer {
        Answer {
            sid: r.sid.as_str().to_owned(),
            pid: r.pid.as_str().to_owned(),
            rooms: r.rooms.iter().map(|r| r.as_str().to_owned()).collect(),
            data: r.data,
            missed: r
                .missed
                .into_iter()
                .map(|m| (m.data.as_str().to_owned(), m.attachments))
                .collect(),
        }
    }
}

struct Model {
    clock: u64,
    max_packets: usize,
    max_sessions: usize,
    /// Oldest first.
    packets: Vec<ModelPacket>,
    /// In persist order, which is disconnection order.
    sessions: Vec<ModelSession>,
}

impl Model {
    fn tick(&mut self, now: u64) {
        self.clock = self.clock.max(now);
        let now = self.clock;
        self.packets.retain(|p| p.at + TTL_MS > now);
        self.sessions.retain(|s| s.at + TTL_MS > now);
    }

    fn record(&mut self, now: u64, packet: ModelPacket) {
        self.tick(now);
        if self.max_packets == 0 {
            return;
        }
        self.packets.push(ModelPacket {
            at: self.clock,
            ..packet
        });
        if self.packets.len() > self.max_packets {
            self.packets.remove(0);
        }
    }

    fn persist(&mut self, now: u64, session: ModelSession) {
        self.tick(now);
        self.sessions.retain(|s| s.pid != session.pid);
        if self.max_sessions == 0 {
            return;
        }
        if self.sessions.len() >= self.max_sessions {
            self.sessions.remove(0);
        }
        self.sessions.push(ModelSession {
            at: self.clock,
            ..session
        });
    }

    fn restore(&mut self, now: u64, pid: &str, offset: &str) -> Option<Answer> {
        self.tick(now);
        let at = self.sessions.iter().position(|s| s.pid == pid)?;
        let session = self.sessions.remove(at);
        let index = self.packets.iter().position(|p| p.offset == offset)?;
        let missed = self.packets[index + 1..]
            .iter()
            .filter(|p| {
                (p.to.is_empty() || session.rooms.iter().any(|r| p.to.contains(r)))
                    && !session.rooms.iter().any(|r| p.except.contains(r))
            })
            .map(|p| (p.data.clone(), p.attachments.clone()))
            .collect();
        Some(Answer {
            sid: session.sid,
            pid: session.pid,
            rooms: session.rooms,
            data: session.data,
            missed,
        })
    }

    fn poll_timeout(&self) -> Option<u64> {
        let packet = self.packets.iter().map(|p| p.at).min();
        let session = self.sessions.iter().map(|s| s.at).min();
        packet
            .into_iter()
            .chain(session)
            .min()
            .map(|at| at + TTL_MS)
    }
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_a_naive_model(
        prefix in "[a-z\"\\\\é-]{0,3}",
        max_packets in prop_oneof![1 => Just(0usize), 6 => 1usize..12],
        max_sessions in prop_oneof![1 => Just(0usize), 6 => 1usize..6],
        ops in vec(op(), 1..80),
    ) {
        let mut config = RecoveryConfig::default();
        config.max_disconnection_duration = Duration::from_millis(TTL_MS);
        config.max_packets = max_packets;
        config.max_sessions = max_sessions;
        let mut store: RecoveryStore<u32> = RecoveryStore::new(config, Str::from(prefix.as_str()));
        let mut model = Model {
            clock: 0,
            max_packets,
            max_sessions,
            packets: Vec::new(),
            sessions: Vec::new(),
        };
        let mut issued: Vec<String> = Vec::new();
        // The caller's clock, which may run backwards.
        let mut now: u64 = 0;

        for op in ops {
            match op {
                Op::Advance(dt) => now = now.saturating_add_signed(dt),
                Op::Record { args, attachments, to, except, trailing_ws } => {
                    let values: Vec<serde_json::Value> = if args == 0 {
                        Vec::new()
                    } else {
                        let mut v = vec![serde_json::json!("ev")];
                        v.extend((1..args).map(|i| serde_json::json!([i, {"k": "]"}])));
                        v
                    };
                    let mut text = serde_json::to_string(&values).unwrap();
                    if trailing_ws {
                        text.push_str(" \n");
                    }
                    let attachments: Vec<Bytes> = (0..attachments)
                        .map(|i| Bytes::from(vec![i; usize::from(i) + 1]))
                        .collect();
                    let (to, except) = (rooms_of(to), rooms_of(except));
                    let got = store
                        .record(instant(now), &Str::from(text), &attachments, &to_rooms(&to), &to_rooms(&except))
                        .unwrap();
                    let offset = got.offset.as_str().to_owned();
                    prop_assert!(offset.starts_with(prefix.as_str()));
                    prop_assert!(!issued.contains(&offset), "offset {offset:?} issued twice");
                    let mut expected = values.clone();
                    expected.push(serde_json::Value::String(offset.clone()));
                    let parsed: serde_json::Value = serde_json::from_str(&got.data).unwrap();
                    prop_assert_eq!(parsed, serde_json::Value::Array(expected));
                    issued.push(offset.clone());
                    model.record(now, ModelPacket {
                        offset,
                        at: now,
                        data: got.data.as_str().to_owned(),
                        attachments,
                        to: to.into_iter().collect(),
                        except: except.into_iter().collect(),
                    });
                }
                Op::Persist { pid, rooms, data } => {
                    let sid = format!("s{pid}");
                    let rooms = rooms_of(rooms);
                    store.persist(
                        instant(now),
                        Str::from(pid.to_string()),
                        Sid::parse(&sid).unwrap(),
                        to_rooms(&rooms),
                        data,
                    );
                    model.persist(now, ModelSession { pid: pid.to_string(), sid, rooms, data, at: now });
                }
                Op::Restore { pid, offset } => {
                    let offset = match offset {
                        OffsetChoice::Issued(_) if issued.is_empty() => format!("{prefix}0"),
                        OffsetChoice::Issued(n) => {
                            // Mostly recent ones, which are likelier to still be kept.
                            let back = if n % 4 == 0 { n } else { n % 8 };
                            issued[issued.len() - 1 - back % issued.len()].clone()
                        }
                        OffsetChoice::Text(text) => text,
                    };
                    let pid = pid.to_string();
                    let got = store.restore(instant(now), &pid, &offset).map(Answer::from);
                    let expected = model.restore(now, &pid, &offset);
                    prop_assert_eq!(got, expected, "restore({:?}, {:?})", pid, offset);
                }
                Op::Deadline => {
                    if let Some(at) = store.poll_timeout() {
                        now = u64::try_from(at.since_epoch().as_millis()).unwrap();
                        store.handle_timeout(at);
                        model.tick(now);
                        prop_assert!(store.poll_timeout().is_none_or(|next| next > at));
                    }
                }
                Op::Timeout => {
                    store.handle_timeout(instant(now));
                    model.tick(now);
                }
            }
            prop_assert_eq!(store.packet_count(), model.packets.len());
            prop_assert_eq!(store.session_count(), model.sessions.len());
            prop_assert!(store.packet_count() <= max_packets);
            prop_assert!(store.session_count() <= max_sessions);
            prop_assert_eq!(store.poll_timeout(), model.poll_timeout().map(instant));
            for s in &model.sessions {
                prop_assert!(store.contains_session(&s.pid));
            }
        }
    }
}
