//! Property tests of the rooms index: random sequences of registrations,
//! joins and leaves run against a naive model (each socket's set of room
//! names), and after every step every query and broadcast selection must agree
//! with the model, no empty room may survive, and the index must equal one
//! built from scratch with the same memberships.

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;
use socketio_proto::rooms::{Room, Rooms};

/// Socket ids the operations use; `SOCKETS` itself is never registered, so
/// queries also cover an unknown socket.
const SOCKETS: u8 = 6;

/// Room names the operations use, including the empty name and a non-ASCII
/// one; `"never"` is never joined, so queries also cover an unknown room.
const ROOM_NAMES: [&str; 6] = ["", "a", "b", "lobby", "sid-3", "ünï"];
const UNKNOWN_ROOM: &str = "never";

/// Every registered socket and the names of the rooms it is in.
type Model = BTreeMap<u8, BTreeSet<String>>;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8),
    Remove(u8),
    Join(u8, String),
    JoinMany(u8, Vec<String>),
    Leave(u8, String),
    LeaveAll(u8),
    JoinSelected(Vec<String>, Vec<String>, Vec<String>),
    LeaveSelected(Vec<String>, Vec<String>, Vec<String>),
    Select(Vec<String>, Vec<String>),
}

fn socket() -> impl Strategy<Value = u8> {
    0..SOCKETS
}

fn room_name() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => prop::sample::select(&ROOM_NAMES[..]).prop_map(String::from),
        1 => Just(String::from(UNKNOWN_ROOM)),
    ]
}

fn room_names(max: usize) -> impl Strategy<Value = Vec<String>> {
    vec(room_name(), 0..=max)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => socket().prop_map(Op::Insert),
        1 => socket().prop_map(Op::Remove),
        6 => (socket(), room_name()).prop_map(|(s, r)| Op::Join(s, r)),
        2 => (socket(), room_names(4)).prop_map(|(s, rs)| Op::JoinMany(s, rs)),
        4 => (socket(), room_name()).prop_map(|(s, r)| Op::Leave(s, r)),
        1 => socket().prop_map(Op::LeaveAll),
        1 => (room_names(3), room_names(2), room_names(2))
            .prop_map(|(i, e, r)| Op::JoinSelected(i, e, r)),
        1 => (room_names(3), room_names(2), room_names(2))
            .prop_map(|(i, e, r)| Op::LeaveSelected(i, e, r)),
        3 => (room_names(4), room_names(3)).prop_map(|(i, e)| Op::Select(i, e)),
    ]
}

fn to_rooms(names: &[String]) -> Vec<Room> {
    names.iter().map(|name| Room::from(name.as_str())).collect()
}

fn to_names<'a>(rooms: impl Iterator<Item = &'a Room>) -> Vec<String> {
    rooms.map(|room| String::from(room.as_str())).collect()
}

/// Node's semantics, spelled out: everyone when `include` is empty, else
/// members of any included room; minus members of any excluded room.
fn model_select(model: &Model, include: &[String], exclude: &[String]) -> Vec<u8> {
    model
        .iter()
        .filter(|(_, rooms)| include.is_empty() || include.iter().any(|r| rooms.contains(r)))
        .filter(|(_, rooms)| !exclude.iter().any(|r| rooms.contains(r)))
        .map(|(socket, _)| *socket)
        .collect()
}

fn model_join(model: &mut Model, socket: u8, room: &str) -> bool {
    model.entry(socket).or_default().insert(String::from(room))
}

fn model_leave(model: &mut Model, socket: u8, room: &str) -> bool {
    model
        .get_mut(&socket)
        .is_some_and(|rooms| rooms.remove(room))
}

fn check_select(
    index: &Rooms<u8>,
    model: &Model,
    include: &[String],
    exclude: &[String],
) -> Result<(), TestCaseError> {
    let exclude_rooms = to_rooms(exclude);
    let selection = index.select(&to_rooms(include), &exclude_rooms);
    let (lower, upper) = selection.size_hint();
    let got: Vec<u8> = selection.copied().collect();
    prop_assert_eq!(
        &got,
        &model_select(model, include, exclude),
        "{:?} except {:?}",
        include,
        exclude
    );
    prop_assert!(
        lower <= got.len(),
        "size_hint lower {} > {}",
        lower,
        got.len()
    );
    prop_assert!(
        upper.is_some_and(|upper| got.len() <= upper),
        "size_hint upper {:?} < {}",
        upper,
        got.len()
    );
    Ok(())
}

/// Every query against the model, for every known and one unknown socket and
/// room.
fn check(index: &Rooms<u8>, model: &Model) -> Result<(), TestCaseError> {
    let memberships: BTreeMap<&str, BTreeSet<u8>> =
        model
            .iter()
            .fold(BTreeMap::new(), |mut acc, (socket, rooms)| {
                for room in rooms {
                    acc.entry(room.as_str()).or_default().insert(*socket);
                }
                acc
            });

    prop_assert_eq!(index.socket_count(), model.len());
    prop_assert_eq!(
        index.all_sockets().copied().collect::<Vec<_>>(),
        model.keys().copied().collect::<Vec<_>>()
    );
    prop_assert_eq!(index.room_count(), memberships.len());
    prop_assert_eq!(
        to_names(index.all_rooms()),
        memberships
            .keys()
            .map(|r| String::from(*r))
            .collect::<Vec<_>>()
    );

    for socket in 0..=SOCKETS {
        let expected = model.get(&socket);
        prop_assert_eq!(index.contains_socket(&socket), expected.is_some());
        let rooms_of = to_names(index.rooms_of(&socket));
        prop_assert_eq!(index.rooms_of(&socket).len(), rooms_of.len());
        prop_assert_eq!(
            rooms_of,
            expected
                .map(|r| r.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        );
        for name in ROOM_NAMES.iter().chain([&UNKNOWN_ROOM]) {
            let room = Room::from(*name);
            prop_assert_eq!(
                index.contains(&socket, &room),
                expected.is_some_and(|r| r.contains(*name))
            );
        }
    }

    for name in ROOM_NAMES.iter().chain([&UNKNOWN_ROOM]) {
        let room = Room::from(*name);
        let members: Vec<u8> = index.sockets_in(&room).copied().collect();
        prop_assert_eq!(index.sockets_in(&room).len(), members.len());
        let expected: Vec<u8> = memberships
            .get(name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        prop_assert_eq!(&members, &expected, "members of {:?}", name);
        prop_assert_eq!(
            index.contains_room(&room),
            !members.is_empty(),
            "room {:?} kept empty",
            name
        );
    }

    // No room survives empty, whatever its name.
    for room in index.all_rooms() {
        prop_assert!(index.sockets_in(room).len() > 0, "empty room {:?}", room);
    }

    // Broadcast to everyone, to every room at once, and to everyone but one
    // room, for each room.
    let all_names: Vec<String> = ROOM_NAMES.iter().map(|n| String::from(*n)).collect();
    check_select(index, model, &[], &[])?;
    check_select(index, model, &all_names, &[])?;
    for name in &all_names {
        check_select(index, model, &[], std::slice::from_ref(name))?;
        check_select(index, model, std::slice::from_ref(name), &[])?;
    }

    // The same memberships built from scratch give an equal index: nothing
    // left over from the history of operations.
    let mut rebuilt = Rooms::new();
    for (socket, rooms) in model {
        rebuilt.insert_socket(*socket);
        for room in rooms {
            rebuilt.join(*socket, Room::from(room.as_str()));
        }
    }
    prop_assert_eq!(index, &rebuilt);
    Ok(())
}

proptest! {
    #[test]
    fn index_matches_the_naive_model(ops in vec(op(), 0..80)) {
        let mut index = Rooms::new();
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Insert(socket) => {
                    let fresh = !model.contains_key(&socket);
                    model.entry(socket).or_default();
                    prop_assert_eq!(index.insert_socket(socket), fresh);
                }
                Op::Remove(socket) => {
                    let expected = model.remove(&socket).map(|rooms| rooms.into_iter().collect::<Vec<_>>());
                    let got = index.remove_socket(&socket).map(|rooms| to_names(rooms.iter()));
                    prop_assert_eq!(got, expected);
                }
                Op::Join(socket, room) => {
                    let fresh = model_join(&mut model, socket, &room);
                    prop_assert_eq!(index.join(socket, Room::from(room.as_str())), fresh);
                }
                Op::JoinMany(socket, rooms) => {
                    model.entry(socket).or_default();
                    let fresh = rooms.iter().filter(|room| model_join(&mut model, socket, room)).count();
                    prop_assert_eq!(index.join_many(socket, to_rooms(&rooms)), fresh);
                }
                Op::Leave(socket, room) => {
                    let was_in = model_leave(&mut model, socket, &room);
                    prop_assert_eq!(index.leave(&socket, &Room::from(room.as_str())), was_in);
                }
                Op::LeaveAll(socket) => {
                    let expected: Vec<String> = model
                        .get_mut(&socket)
                        .map(|rooms| std::mem::take(rooms).into_iter().collect())
                        .unwrap_or_default();
                    prop_assert_eq!(to_names(index.leave_all(&socket).iter()), expected);
                }
                Op::JoinSelected(include, exclude, rooms) => {
                    let mut fresh = 0;
                    for socket in model_select(&model, &include, &exclude) {
                        fresh += rooms.iter().filter(|room| model_join(&mut model, socket, room)).count();
                    }
                    let got = index.join_selected(&to_rooms(&include), &to_rooms(&exclude), &to_rooms(&rooms));
                    prop_assert_eq!(got, fresh);
                }
                Op::LeaveSelected(include, exclude, rooms) => {
                    let mut left = 0;
                    for socket in model_select(&model, &include, &exclude) {
                        left += rooms.iter().filter(|room| model_leave(&mut model, socket, room)).count();
                    }
                    let got = index.leave_selected(&to_rooms(&include), &to_rooms(&exclude), &to_rooms(&rooms));
                    prop_assert_eq!(got, left);
                }
                Op::Select(include, exclude) => check_select(&index, &model, &include, &exclude)?,
            }
            check(&index, &model)?;
        }
    }

    /// A selection over several rooms is the sorted, duplicate-free union of
    /// their members, whatever the order and repetition of `include`.
    #[test]
    fn selection_is_the_sorted_union(
        memberships in vec((0..40_u16, 0..5_usize), 0..120),
        include in vec(0..6_usize, 1..6),
    ) {
        let names = ["r0", "r1", "r2", "r3", "r4", "r5"];
        let mut index = Rooms::new();
        let mut union = BTreeSet::new();
        for (socket, room) in memberships {
            index.join(socket, Room::from(names[room]));
            if include.contains(&room) {
                union.insert(socket);
            }
        }
        let include: Vec<Room> = include.iter().map(|i| Room::from(names[*i])).collect();
        let got: Vec<u16> = index.select(&include, &[]).copied().collect();
        prop_assert_eq!(got, union.into_iter().collect::<Vec<_>>());
    }
}
