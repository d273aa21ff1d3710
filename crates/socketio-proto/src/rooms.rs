//! The rooms index that broadcasting selects its recipients from.
//!
//! # Theory of operation
//!
//! This is Node's in-memory adapter bookkeeping (`rooms: Map<Room, Set<SocketId>>`
//! beside `sids: Map<SocketId, Set<Room>>`) as a plain `&mut self` value. Two
//! ordered maps mirror each other:
//!
//! * `sockets`: every *registered* socket and the set of rooms it is in. A
//!   socket is registered by [`Rooms::insert_socket`] or implicitly by its first
//!   [`Rooms::join`], and stays registered, possibly in no room at all, until
//!   [`Rooms::remove_socket`]. Registration matters because a broadcast with no
//!   `to(...)` reaches every socket of the namespace, including those in no room.
//! * `rooms`: every room that has at least one member, and its members.
//!
//! Invariants, kept by every method: `s ∈ rooms[r]` ⇔ `r ∈ sockets[s]`, and no
//! room in `rooms` is empty, so memory is bounded by the live memberships (plus
//! one entry per registered socket), never by the history of room names.
//!
//! Nothing joins a room on its own: Node makes each socket join a room named
//! after its id, and so can the caller, but this index does not assume it.
//!
//! B-trees rather than hash maps make every iteration order a function of the
//! contents alone (ascending socket id, ascending room name), which keeps
//! tests, simulations and fuzzing deterministic, and needs no hasher or random
//! seed in `no_std`. A set of one element is kept inline ([`SmallSet`]): in
//! Node every socket is alone in the room named after it, and a B-tree node
//! for one element costs eleven slots (about 1 KiB per socket for 64-byte
//! socket ids and that room's name).
//!
//! [`Rooms::select`] is the broadcast query (`to` / `in` / `except`). It
//! borrows the index and allocates nothing when at most one included room
//! exists; with several, it merges their sorted member sets through a heap of
//! one cursor per room (one allocation of `include.len()` entries), so its cost
//! follows the size of the included rooms, not of the index. Exclusion looks
//! at each candidate's own room set instead of building the union of the
//! excluded rooms up front as Node does: excluded rooms can be huge (`except`
//! a lobby) while a socket is in a handful of rooms, so a per-candidate check
//! costs `O(|exclude| · log r)` with `r` the candidate's room count, plus one
//! `O(log n)` lookup of the candidate, and allocates nothing.

use alloc::collections::binary_heap::PeekMut;
use alloc::collections::{btree_map, btree_set, BTreeMap, BTreeSet, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::iter::FusedIterator;

/// A room name: UTF-8 text in shared [`bytes::Bytes`], so cloning it into both
/// halves of the index, or out of it, is a reference-count increment.
pub type Room = engineio_proto::Str;

/// Which sockets are in which rooms, in both directions, with deterministic
/// (ascending) iteration order.
///
/// `S` is the socket id; a small `Copy` newtype is the intended use, since the
/// index stores each id once per room it is in plus once as a registration.
///
/// Call [`insert_socket`](Rooms::insert_socket) when a socket connects to the
/// namespace, [`join`](Rooms::join) / [`leave`](Rooms::leave) as the
/// application asks, [`remove_socket`](Rooms::remove_socket) when it
/// disconnects, and [`select`](Rooms::select) to find a broadcast's
/// recipients.
///
/// ```
/// use socketio_proto::rooms::{Room, Rooms};
///
/// let mut rooms = Rooms::new();
/// rooms.insert_socket(1_u32); // connected, in no room
/// rooms.join(2, Room::from("chat"));
/// rooms.join(3, Room::from("chat"));
/// rooms.join(3, Room::from("admins"));
///
/// // `io.emit(...)`: every registered socket, ascending.
/// let all: Vec<u32> = rooms.select(&[], &[]).copied().collect();
/// assert_eq!(all, [1, 2, 3]);
///
/// // `io.to("chat").except("admins").emit(...)`.
/// let chat = [Room::from("chat")];
/// let admins = [Room::from("admins")];
/// let picked: Vec<u32> = rooms.select(&chat, &admins).copied().collect();
/// assert_eq!(picked, [2]);
///
/// // On disconnect, the rooms it was in; emptied rooms disappear.
/// let left = rooms.remove_socket(&3).unwrap();
/// assert_eq!(left.len(), 2);
/// assert!(!rooms.contains_room(&Room::from("admins")));
/// assert_eq!(rooms.socket_count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Rooms<S> {
    /// Registered sockets and their rooms; the set may be empty.
    sockets: BTreeMap<S, SmallSet<Room>>,
    /// Non-empty rooms and their members.
    rooms: BTreeMap<Room, SmallSet<S>>,
}

impl<S: Ord> PartialEq for Rooms<S> {
    fn eq(&self, other: &Self) -> bool {
        self.sockets == other.sockets && self.rooms == other.rooms
    }
}

impl<S: Ord> Eq for Rooms<S> {}

impl<S> Default for Rooms<S> {
    fn default() -> Self {
        Rooms {
            sockets: BTreeMap::new(),
            rooms: BTreeMap::new(),
        }
    }
}

impl<S: Ord + Clone> Rooms<S> {
    /// An empty index. Allocates nothing until the first insertion.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `socket` so that a broadcast to everyone (an empty `include`
    /// in [`select`](Rooms::select)) reaches it while it is in no room. Call it
    /// when the socket connects to the namespace. Returns `false`, and changes
    /// nothing, when the socket was already registered.
    pub fn insert_socket(&mut self, socket: S) -> bool {
        match self.sockets.entry(socket) {
            btree_map::Entry::Occupied(_) => false,
            btree_map::Entry::Vacant(entry) => {
                entry.insert(SmallSet::default());
                true
            }
        }
    }

    /// Forgets `socket`: it leaves every room (rooms left empty are dropped)
    /// and is no longer registered. Call it once the socket has disconnected.
    /// Returns the rooms it was in, or `None` when it was not registered.
    ///
    /// Node's `disconnecting` handler still sees the rooms: read
    /// [`rooms_of`](Rooms::rooms_of) before calling this, or use the returned
    /// set.
    pub fn remove_socket(&mut self, socket: &S) -> Option<BTreeSet<Room>> {
        let left = self.sockets.remove(socket)?;
        self.forget_memberships(socket, &left);
        Some(left.into_btree())
    }

    /// Adds `socket` to `room`, registering the socket if needed. Idempotent:
    /// returns whether the membership is new. A room exists from its first
    /// member on; there is no separate creation step.
    pub fn join(&mut self, socket: S, room: Room) -> bool {
        let joined = self.sockets.entry(socket.clone()).or_default();
        if joined.contains(&room) {
            return false;
        }
        joined.insert(room.clone());
        self.rooms.entry(room).or_default().insert(socket);
        true
    }

    /// Adds `socket` to each of `rooms` (Node's `socket.join([...])`),
    /// registering the socket even when `rooms` is empty. Returns how many
    /// memberships are new.
    pub fn join_many<I>(&mut self, socket: S, rooms: I) -> usize
    where
        I: IntoIterator<Item = Room>,
    {
        self.sockets.entry(socket.clone()).or_default();
        let mut joined = 0;
        for room in rooms {
            joined += usize::from(self.join(socket.clone(), room));
        }
        joined
    }

    /// Removes `socket` from `room`, dropping the room when it becomes empty.
    /// The socket stays registered, even if it is now in no room. Returns
    /// whether it was a member.
    pub fn leave(&mut self, socket: &S, room: &Room) -> bool {
        let Some(joined) = self.sockets.get_mut(socket) else {
            return false;
        };
        if !joined.remove(room) {
            return false;
        }
        self.forget_membership(socket, room);
        true
    }

    /// Removes `socket` from every room it is in, dropping rooms that become
    /// empty, and returns those rooms (empty for an unknown socket). The
    /// socket stays registered; use [`remove_socket`](Rooms::remove_socket)
    /// on disconnect to forget it as well.
    pub fn leave_all(&mut self, socket: &S) -> BTreeSet<Room> {
        let Some(joined) = self.sockets.get_mut(socket) else {
            return BTreeSet::new();
        };
        let left = core::mem::take(joined);
        self.forget_memberships(socket, &left);
        left.into_btree()
    }

    /// Makes every socket that [`select`](Rooms::select)`(include, exclude)`
    /// picks join each of `rooms` (Node's `io.in(..).except(..).socketsJoin(..)`).
    /// Returns how many memberships are new.
    ///
    /// Allocates the list of selected ids first, since the index cannot be
    /// changed while a selection borrows it.
    pub fn join_selected(&mut self, include: &[Room], exclude: &[Room], rooms: &[Room]) -> usize {
        let selected: Vec<S> = self.select(include, exclude).cloned().collect();
        selected
            .into_iter()
            .map(|socket| self.join_many(socket, rooms.iter().cloned()))
            .sum()
    }

    /// Makes every socket that [`select`](Rooms::select)`(include, exclude)`
    /// picks leave each of `rooms` (Node's `socketsLeave`). The selection is
    /// taken before anyone leaves, so leaving an included room does not change
    /// who is affected. Returns how many memberships ended.
    pub fn leave_selected(&mut self, include: &[Room], exclude: &[Room], rooms: &[Room]) -> usize {
        let selected: Vec<S> = self.select(include, exclude).cloned().collect();
        let mut left = 0;
        for socket in &selected {
            for room in rooms {
                left += usize::from(self.leave(socket, room));
            }
        }
        left
    }

    /// The rooms `socket` is in, ascending; empty for a socket that is in no
    /// room or not registered. Changes with [`join`](Rooms::join),
    /// [`leave`](Rooms::leave) and friends.
    pub fn rooms_of(
        &self,
        socket: &S,
    ) -> impl ExactSizeIterator<Item = &Room> + DoubleEndedIterator + Clone + '_ {
        self.sockets
            .get(socket)
            .map_or_else(SetIter::default, SmallSet::iter)
    }

    /// The members of `room`, ascending; empty for a room with no members
    /// (which the index does not keep).
    pub fn sockets_in(
        &self,
        room: &Room,
    ) -> impl ExactSizeIterator<Item = &S> + DoubleEndedIterator + Clone + '_ {
        self.rooms
            .get(room)
            .map_or_else(SetIter::default, SmallSet::iter)
    }

    /// Whether `socket` is in `room`.
    pub fn contains(&self, socket: &S, room: &Room) -> bool {
        self.sockets
            .get(socket)
            .is_some_and(|joined| joined.contains(room))
    }

    /// Whether `socket` is registered (in any number of rooms, including none).
    pub fn contains_socket(&self, socket: &S) -> bool {
        self.sockets.contains_key(socket)
    }

    /// Whether `room` has at least one member. Rooms without members are not
    /// kept, so this is also "whether the room exists".
    pub fn contains_room(&self, room: &Room) -> bool {
        self.rooms.contains_key(room)
    }

    /// How many rooms have at least one member.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// How many sockets are registered, whether in rooms or not.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Every room with at least one member, ascending.
    pub fn all_rooms(&self) -> impl ExactSizeIterator<Item = &Room> + DoubleEndedIterator + Clone {
        self.rooms.keys()
    }

    /// Every registered socket, ascending.
    pub fn all_sockets(&self) -> impl ExactSizeIterator<Item = &S> + DoubleEndedIterator + Clone {
        self.sockets.keys()
    }

    /// The recipients of a broadcast, with Node's semantics, each socket once
    /// and in ascending order:
    ///
    /// * `include` empty: every registered socket (`io.emit`), including
    ///   sockets in no room;
    /// * otherwise: every socket in at least one of the `include` rooms
    ///   (`io.to(a).to(b)`); rooms that do not exist contribute nothing;
    /// * in both cases minus every socket in at least one `exclude` room
    ///   (`except`).
    ///
    /// The result borrows the index: to change the index based on a selection,
    /// collect it first (or use [`join_selected`](Rooms::join_selected) /
    /// [`leave_selected`](Rooms::leave_selected)). Allocation: none when at
    /// most one of the `include` rooms exists, otherwise one heap of one
    /// cursor per existing included room. Cost: `O(m · log k)` for `m`
    /// memberships of the `k` included rooms (or `O(n)` for all `n`
    /// sockets), plus, when `exclude` is not empty, `O(log n + |exclude| · log r)`
    /// per candidate (see the module comment).
    pub fn select<'a>(&'a self, include: &[Room], exclude: &'a [Room]) -> Selection<'a, S> {
        let source = if include.is_empty() {
            Source::All(self.sockets.iter())
        } else {
            let mut found = include.iter().filter_map(|room| self.rooms.get(room));
            match (found.next(), found.next()) {
                (None, _) => Source::Many(BinaryHeap::new()),
                (Some(only), None) => Source::One(only.iter()),
                (Some(first), Some(second)) => {
                    let mut heap = BinaryHeap::with_capacity(include.len());
                    for members in [first, second].into_iter().chain(found) {
                        heap.extend(Cursor::new(members.iter()));
                    }
                    Source::Many(heap)
                }
            }
        };
        Selection {
            source,
            exclude,
            sockets: &self.sockets,
        }
    }

    /// Removes `socket` from the member sets of `rooms` (which its own set no
    /// longer lists), dropping rooms that become empty.
    fn forget_memberships(&mut self, socket: &S, rooms: &SmallSet<Room>) {
        for room in rooms {
            self.forget_membership(socket, room);
        }
    }

    /// The `rooms` half of a leave.
    fn forget_membership(&mut self, socket: &S, room: &Room) {
        if let btree_map::Entry::Occupied(mut members) = self.rooms.entry(room.clone()) {
            members.get_mut().remove(socket);
            if members.get().is_empty() {
                members.remove();
            }
        }
    }
}

/// The sockets a broadcast reaches, from [`Rooms::select`]: ascending, each
/// once. Borrows the index (and the `exclude` list) for `'a`.
#[derive(Debug, Clone)]
pub struct Selection<'a, S> {
    source: Source<'a, S>,
    exclude: &'a [Room],
    sockets: &'a BTreeMap<S, SmallSet<Room>>,
}

/// Where a selection's candidates come from, before exclusion.
#[derive(Debug, Clone)]
enum Source<'a, S> {
    /// Every registered socket, with its rooms at hand for the exclusion check.
    All(btree_map::Iter<'a, S, SmallSet<Room>>),
    /// The members of the only included room that exists.
    One(SetIter<'a, S>),
    /// A k-way merge of several included rooms (or none: an empty heap).
    Many(BinaryHeap<Cursor<'a, S>>),
}

impl<'a, S: Ord> Source<'a, S> {
    /// The next candidate, with its room set when it is already known.
    fn next(&mut self) -> Option<(&'a S, Option<&'a SmallSet<Room>>)> {
        match self {
            Source::All(iter) => iter.next().map(|(socket, rooms)| (socket, Some(rooms))),
            Source::One(iter) => iter.next().map(|socket| (socket, None)),
            Source::Many(heap) => {
                let socket = heap.peek()?.head;
                // Advance every cursor sitting on `socket`: a socket in several
                // included rooms is produced once.
                while let Some(mut top) = heap.peek_mut() {
                    if top.head != socket {
                        break;
                    }
                    match top.rest.next() {
                        Some(next) => top.head = next,
                        None => {
                            PeekMut::pop(top);
                        }
                    }
                }
                Some((socket, None))
            }
        }
    }

    /// `(lower, upper)` bounds on the candidates left.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Source::All(iter) => iter.size_hint(),
            Source::One(iter) => iter.size_hint(),
            Source::Many(heap) => {
                // One cursor's remaining members are distinct and all still to
                // come; duplicates across cursors make the sum an upper bound.
                let left = heap.iter().map(|cursor| 1 + cursor.rest.len());
                let upper = left.clone().sum();
                (left.max().unwrap_or(0), Some(upper))
            }
        }
    }
}

impl<'a, S: Ord> Iterator for Selection<'a, S> {
    type Item = &'a S;

    fn next(&mut self) -> Option<&'a S> {
        loop {
            let (socket, rooms) = self.source.next()?;
            if self.exclude.is_empty() {
                return Some(socket);
            }
            // Every member of a room is registered, so the lookup only fails
            // if the invariant is broken; then nothing excludes the socket.
            let excluded = rooms
                .or_else(|| self.sockets.get(socket))
                .is_some_and(|rooms| self.exclude.iter().any(|room| rooms.contains(room)));
            if !excluded {
                return Some(socket);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lower, upper) = self.source.size_hint();
        if self.exclude.is_empty() {
            (lower, upper)
        } else {
            (0, upper)
        }
    }
}

impl<S: Ord> FusedIterator for Selection<'_, S> {}

/// One included room's members during a merge: the smallest one not yet
/// produced, and the rest. Ordered by `head`, reversed, so that
/// [`BinaryHeap`] (a max-heap) yields the smallest head first.
#[derive(Debug, Clone)]
struct Cursor<'a, S> {
    head: &'a S,
    rest: SetIter<'a, S>,
}

impl<'a, S> Cursor<'a, S> {
    /// `None` for an empty room (which the index does not keep, but a cursor
    /// should not depend on that).
    fn new(mut members: SetIter<'a, S>) -> Option<Self> {
        let head = members.next()?;
        Some(Cursor {
            head,
            rest: members,
        })
    }
}

impl<S: Ord> Ord for Cursor<'_, S> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.head.cmp(self.head)
    }
}

impl<S: Ord> PartialOrd for Cursor<'_, S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<S: Ord> PartialEq for Cursor<'_, S> {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head
    }
}

impl<S: Ord> Eq for Cursor<'_, S> {}

/// A sorted set that keeps a single element inline and moves to a
/// [`BTreeSet`] from the second on. Empty, it allocates nothing either.
#[derive(Debug, Clone)]
enum SmallSet<T> {
    One(T),
    Many(BTreeSet<T>),
}

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet::Many(BTreeSet::new())
    }
}

impl<T: Ord> SmallSet<T> {
    fn contains(&self, value: &T) -> bool {
        match self {
            SmallSet::One(one) => one == value,
            SmallSet::Many(set) => set.contains(value),
        }
    }

    /// Adds `value`; whether it was new.
    fn insert(&mut self, value: T) -> bool {
        match self {
            SmallSet::Many(set) if set.is_empty() => *self = SmallSet::One(value),
            SmallSet::Many(set) => return set.insert(value),
            SmallSet::One(one) if *one == value => return false,
            SmallSet::One(_) => {
                let SmallSet::One(one) = core::mem::take(self) else {
                    unreachable!("matched One above")
                };
                *self = SmallSet::Many(BTreeSet::from([one, value]));
            }
        }
        true
    }

    /// Takes `value` out; whether it was there.
    fn remove(&mut self, value: &T) -> bool {
        match self {
            SmallSet::One(one) if one == value => *self = SmallSet::default(),
            SmallSet::One(_) => return false,
            SmallSet::Many(set) => return set.remove(value),
        }
        true
    }

    fn is_empty(&self) -> bool {
        matches!(self, SmallSet::Many(set) if set.is_empty())
    }

    fn iter(&self) -> SetIter<'_, T> {
        match self {
            SmallSet::One(one) => SetIter::Few(core::slice::from_ref(one).iter()),
            SmallSet::Many(set) => SetIter::Tree(set.iter()),
        }
    }

    fn into_btree(self) -> BTreeSet<T> {
        match self {
            SmallSet::One(one) => BTreeSet::from([one]),
            SmallSet::Many(set) => set,
        }
    }
}

impl<T: Ord> PartialEq for SmallSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<T: Ord> Eq for SmallSet<T> {}

impl<'a, T: Ord> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;

    fn into_iter(self) -> SetIter<'a, T> {
        self.iter()
    }
}

/// The elements of a [`SmallSet`], ascending.
#[derive(Debug, Clone)]
enum SetIter<'a, T> {
    Few(core::slice::Iter<'a, T>),
    Tree(btree_set::Iter<'a, T>),
}

impl<T> Default for SetIter<'_, T> {
    fn default() -> Self {
        SetIter::Few([].iter())
    }
}

impl<'a, T> Iterator for SetIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        match self {
            SetIter::Few(iter) => iter.next(),
            SetIter::Tree(iter) => iter.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            SetIter::Few(iter) => iter.size_hint(),
            SetIter::Tree(iter) => iter.size_hint(),
        }
    }
}

impl<T> DoubleEndedIterator for SetIter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            SetIter::Few(iter) => iter.next_back(),
            SetIter::Tree(iter) => iter.next_back(),
        }
    }
}

impl<T> ExactSizeIterator for SetIter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn room(name: &str) -> Room {
        Room::from(name)
    }

    fn rooms(names: &[&str]) -> Vec<Room> {
        names.iter().map(|name| room(name)).collect()
    }

    fn names<'a>(iter: impl Iterator<Item = &'a Room>) -> Vec<&'a str> {
        iter.map(|room| room.as_str()).collect()
    }

    fn select(index: &Rooms<u32>, include: &[&str], exclude: &[&str]) -> Vec<u32> {
        let exclude = rooms(exclude);
        index.select(&rooms(include), &exclude).copied().collect()
    }

    /// 1 in a, b; 2 in b; 3 in a, c; 4 in nothing; 5 in c.
    fn sample() -> Rooms<u32> {
        let mut index = Rooms::new();
        index.join_many(1, rooms(&["a", "b"]));
        index.join(2, room("b"));
        index.join_many(3, rooms(&["c", "a"]));
        index.insert_socket(4);
        index.join(5, room("c"));
        index
    }

    #[test]
    fn a_small_set_moves_between_one_and_many() {
        let mut set = SmallSet::default();
        assert!(set.is_empty());
        assert!(set.insert(5_u32));
        assert!(matches!(set, SmallSet::One(5)));
        assert!(!set.insert(5));
        assert!(set.insert(3));
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [3, 5]);
        assert_eq!(set.iter().rev().copied().collect::<Vec<_>>(), [5, 3]);
        assert!(set.remove(&5) && !set.remove(&5));
        // One element left in a tree equals the same element inline.
        assert_eq!(set, SmallSet::One(3));
        assert!(set.remove(&3));
        assert!(set.is_empty());
        assert_eq!(set.iter().len(), 0);
        assert_eq!(SmallSet::One(1_u32).into_btree(), BTreeSet::from([1]));
    }

    #[test]
    fn join_is_idempotent() {
        let mut index = Rooms::new();
        assert!(index.join(7_u32, room("x")));
        assert!(!index.join(7, room("x")));
        assert_eq!(index.room_count(), 1);
        assert_eq!(index.socket_count(), 1);
        assert_eq!(
            index.sockets_in(&room("x")).copied().collect::<Vec<_>>(),
            [7]
        );
        assert!(index.contains(&7, &room("x")));
    }

    #[test]
    fn join_many_counts_new_memberships_and_registers() {
        let mut index = Rooms::new();
        assert_eq!(index.join_many(1_u32, rooms(&["a", "b", "a"])), 2);
        assert_eq!(index.join_many(1, rooms(&["b", "c"])), 1);
        assert_eq!(names(index.rooms_of(&1)), ["a", "b", "c"]);
        assert_eq!(index.join_many(2, Vec::new()), 0);
        assert!(index.contains_socket(&2));
        assert_eq!(index.rooms_of(&2).len(), 0);
    }

    #[test]
    fn leave_is_idempotent_and_drops_empty_rooms() {
        let mut index = sample();
        assert!(index.leave(&2, &room("b")));
        assert!(!index.leave(&2, &room("b")));
        assert!(index.contains_room(&room("b")), "1 is still in b");
        assert!(index.leave(&1, &room("b")));
        assert!(!index.contains_room(&room("b")));
        assert_eq!(names(index.all_rooms()), ["a", "c"]);
        // Leaving keeps the socket registered.
        assert!(index.contains_socket(&2));
        assert_eq!(index.rooms_of(&2).len(), 0);
    }

    #[test]
    fn leave_of_unknown_socket_or_room_changes_nothing() {
        let mut index = sample();
        let before = index.clone();
        assert!(!index.leave(&99, &room("a")));
        assert!(!index.leave(&1, &room("zzz")));
        assert!(!index.leave(&2, &room("a")));
        assert_eq!(index, before);
        assert!(!index.contains_socket(&99));
    }

    #[test]
    fn leave_all_returns_rooms_and_keeps_registration() {
        let mut index = sample();
        let left = index.leave_all(&3);
        assert_eq!(names(left.iter()), ["a", "c"]);
        assert!(index.contains_socket(&3));
        assert!(index.contains_room(&room("a")), "1 is still in a");
        assert_eq!(
            index.sockets_in(&room("c")).copied().collect::<Vec<_>>(),
            [5]
        );
        assert!(index.leave_all(&3).is_empty());
        assert!(index.leave_all(&99).is_empty());
        assert!(!index.contains_socket(&99));
    }

    #[test]
    fn remove_socket_forgets_it_and_drops_empty_rooms() {
        let mut index = sample();
        assert!(!index.insert_socket(5));
        let left = index.remove_socket(&5).unwrap();
        assert_eq!(names(left.iter()), ["c"]);
        assert!(index.remove_socket(&5).is_none());
        assert!(!index.contains_socket(&5));
        index.remove_socket(&3);
        assert!(!index.contains_room(&room("c")));
        assert_eq!(index.remove_socket(&4).map(|left| left.len()), Some(0));
        assert_eq!(index.all_sockets().copied().collect::<Vec<_>>(), [1, 2]);
        index.remove_socket(&1);
        index.remove_socket(&2);
        assert_eq!(index, Rooms::new());
    }

    #[test]
    fn select_everyone_includes_sockets_in_no_room() {
        let index = sample();
        assert_eq!(select(&index, &[], &[]), [1, 2, 3, 4, 5]);
        assert_eq!(select(&index, &[], &["a"]), [2, 4, 5]);
        assert_eq!(select(&index, &[], &["a", "b"]), [4, 5]);
        assert_eq!(select(&index, &[], &["nope"]), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn select_one_room() {
        let index = sample();
        assert_eq!(select(&index, &["a"], &[]), [1, 3]);
        assert_eq!(select(&index, &["a"], &["c"]), [1]);
        assert_eq!(select(&index, &["a"], &["a"]), Vec::<u32>::new());
        assert_eq!(select(&index, &["a", "nope"], &[]), [1, 3]);
    }

    #[test]
    fn select_several_rooms_yields_each_socket_once_in_order() {
        let index = sample();
        assert_eq!(select(&index, &["c", "b", "a"], &[]), [1, 2, 3, 5]);
        assert_eq!(select(&index, &["a", "a"], &[]), [1, 3]);
        assert_eq!(select(&index, &["b", "c"], &["a"]), [2, 5]);
        assert_eq!(select(&index, &["b", "c"], &["b", "c"]), Vec::<u32>::new());
    }

    #[test]
    fn select_unknown_rooms_is_empty_not_everyone() {
        let index = sample();
        assert_eq!(select(&index, &["nope"], &[]), Vec::<u32>::new());
        assert_eq!(select(&index, &["nope", "never"], &[]), Vec::<u32>::new());
        assert_eq!(select(&Rooms::new(), &[], &[]), Vec::<u32>::new());
    }

    #[test]
    fn select_order_does_not_depend_on_insertion_order() {
        let mut forward = Rooms::new();
        let mut backward = Rooms::new();
        for id in 0..50_u32 {
            forward.join(id, room(if id % 3 == 0 { "x" } else { "y" }));
            let id = 49 - id;
            backward.join(id, room(if id % 3 == 0 { "x" } else { "y" }));
        }
        assert_eq!(forward, backward);
        let picked = select(&forward, &["y", "x"], &[]);
        assert_eq!(picked, (0..50).collect::<Vec<_>>());
        assert_eq!(picked, select(&backward, &["x", "y"], &[]));
    }

    #[test]
    fn selection_size_hint_bounds_the_result() {
        let index = sample();
        for (include, exclude) in [
            (vec![], vec![]),
            (vec![], vec!["a"]),
            (vec!["a"], vec![]),
            (vec!["a", "b", "c"], vec![]),
            (vec!["a", "b", "c"], vec!["b"]),
        ] {
            let exclude = rooms(&exclude);
            let selection = index.select(&rooms(&include), &exclude);
            let (lower, upper) = selection.size_hint();
            let count = selection.count();
            assert!(lower <= count && count <= upper.unwrap(), "{include:?}");
        }
    }

    #[test]
    fn join_and_leave_selected() {
        let mut index = sample();
        // Everyone in a or c but not b joins d: 3 and 5.
        assert_eq!(
            index.join_selected(&rooms(&["a", "c"]), &rooms(&["b"]), &rooms(&["d"])),
            2
        );
        assert_eq!(select(&index, &["d"], &[]), [3, 5]);
        // Every socket joins e, including 4 which is in no room.
        assert_eq!(index.join_selected(&[], &[], &rooms(&["e"])), 5);
        assert_eq!(index.join_selected(&[], &[], &rooms(&["e"])), 0);
        // Everyone in e leaves e and d: the selection is taken before leaving.
        assert_eq!(
            index.leave_selected(&rooms(&["e"]), &[], &rooms(&["e", "d"])),
            7
        );
        assert!(!index.contains_room(&room("e")));
        assert!(!index.contains_room(&room("d")));
        assert_eq!(index, sample());
    }
}
