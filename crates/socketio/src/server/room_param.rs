//! One room or several, wherever a room is named (Node's `socket.join(["a",
//! "b"])`, `io.to(["a", "b"])`).

use socketio_proto::rooms::Room;

/// A room name or a list of them: `"a"`, `String`, `["a", "b"]`,
/// `vec!["a".to_string()]`, `&["a", "b"][..]`.
pub trait RoomParam {
    /// The rooms named.
    fn into_rooms(self) -> Vec<Room>;
}

impl RoomParam for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self)]
    }
}

impl RoomParam for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self.as_str())]
    }
}

impl RoomParam for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self.as_str())]
    }
}

impl<T: AsRef<str>> RoomParam for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.iter().map(|room| Room::from(room.as_ref())).collect()
    }
}

impl<T: AsRef<str>> RoomParam for &[T] {
    fn into_rooms(self) -> Vec<Room> {
        self.iter().map(|room| Room::from(room.as_ref())).collect()
    }
}

impl<T: AsRef<str>, const N: usize> RoomParam for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.iter().map(|room| Room::from(room.as_ref())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_room_or_many() {
        let names = |rooms: Vec<Room>| rooms.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(names("a".into_rooms()), ["a"]);
        assert_eq!(names(String::from("b").into_rooms()), ["b"]);
        assert_eq!(names(["a", "b"].into_rooms()), ["a", "b"]);
        assert_eq!(names(vec![String::from("c")].into_rooms()), ["c"]);
        assert_eq!(names((&["d", "e"][..]).into_rooms()), ["d", "e"]);
    }
}
