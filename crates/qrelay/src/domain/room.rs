//! Rooms: the allow-list of course rooms a question may be asked in, each mapped to a chat channel.
//!
//! Rooms come from configuration, never from students: a student can only pick one of the names the
//! instructor listed, and the first one listed is where a question without a room goes.

use std::fmt;

/// A room's name as it appears in form links (`/r/{room}`) and in the published question: 1 to 64 ASCII
/// letters, digits, `-` or `_`, so it is safe in a URL path and a log line without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

/// A room and the chat channel its questions go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    name: RoomName,
    channel: String,
}

/// The configured rooms, in order; never empty, names unique. The first is the default room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rooms(Vec<Room>);

/// A room name that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room name {0:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'")]
pub struct InvalidRoomName(String);

/// A room name that is well formed but not one of the configured rooms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown room {0:?}")]
pub(crate) struct UnknownRoom(pub(crate) String);

/// A rooms specification that can't be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRooms {
    #[error("no rooms are configured")]
    Empty,
    #[error(transparent)]
    Name(#[from] InvalidRoomName),
    #[error("room {0:?} has an empty channel name")]
    EmptyChannel(String),
    #[error("room {0:?} is listed twice")]
    Duplicate(String),
}

impl RoomName {
    const MAX_LEN: usize = 64;

    /// Parses a room name; see the type's documentation for what is allowed.
    pub fn parse(raw: &str) -> Result<Self, InvalidRoomName> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidRoomName(raw.to_owned()))
        }
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Room {
    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// The chat channel (Rocket.Chat channel name, without `#`) that receives the room's questions.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl Rooms {
    /// Parses a comma-separated list such as `general,rust-101=rust-course`: each entry is a room name,
    /// optionally followed by `=` and the chat channel it posts to (by default a channel of the same name).
    pub fn parse(spec: &str) -> Result<Self, InvalidRooms> {
        let mut rooms: Vec<Room> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, channel) = match entry.split_once('=') {
                Some((name, channel)) => (name.trim(), channel.trim().trim_start_matches('#')),
                None => (entry, entry),
            };
            let name = RoomName::parse(name)?;
            if channel.is_empty() || channel.chars().any(char::is_whitespace) {
                return Err(InvalidRooms::EmptyChannel(name.0));
            }
            if rooms.iter().any(|r| r.name == name) {
                return Err(InvalidRooms::Duplicate(name.0));
            }
            rooms.push(Room {
                name,
                channel: channel.to_owned(),
            });
        }
        if rooms.is_empty() {
            Err(InvalidRooms::Empty)
        } else {
            Ok(Self(rooms))
        }
    }

    /// The room a question without a room goes to: the first configured.
    pub(crate) fn default_room(&self) -> &Room {
        &self.0[0]
    }

    /// Looks a room up by name.
    pub(crate) fn get(&self, name: &str) -> Option<&Room> {
        self.0.iter().find(|r| r.name.as_ref() == name)
    }

    /// The room a student asked for, or the default room when they named none.
    pub(crate) fn resolve(&self, requested: Option<&str>) -> Result<&Room, UnknownRoom> {
        match requested.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(self.default_room()),
            Some(name) => self
                .get(name)
                .ok_or_else(|| UnknownRoom(name.chars().take(64).collect())),
        }
    }

    /// All rooms, default first.
    pub fn iter(&self) -> impl Iterator<Item = &Room> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_map_to_channels_and_the_first_is_the_default() {
        let rooms = Rooms::parse("general, rust-101=#rust-course ,b_2=b2").expect("valid spec");
        let listed: Vec<_> = rooms.iter().map(|r| (r.name().as_ref(), r.channel())).collect();
        assert_eq!(
            listed,
            [("general", "general"), ("rust-101", "rust-course"), ("b_2", "b2")]
        );
        assert_eq!(rooms.default_room().name().as_ref(), "general");
    }

    #[test]
    fn unknown_room_is_rejected() {
        let rooms = Rooms::parse("general,rust-101").expect("valid spec");
        assert_eq!(rooms.resolve(Some("python")), Err(UnknownRoom("python".into())));
        assert_eq!(
            rooms.resolve(Some("General")),
            Err(UnknownRoom("General".into())),
            "names are case-sensitive"
        );
    }

    #[test]
    fn no_room_or_a_blank_room_means_the_default() {
        let rooms = Rooms::parse("general,rust-101").expect("valid spec");
        for requested in [None, Some(""), Some("  ")] {
            assert_eq!(
                rooms.resolve(requested).map(|r| r.name().as_ref()),
                Ok("general"),
                "{requested:?}"
            );
        }
        assert_eq!(rooms.resolve(Some("rust-101")).map(|r| r.channel()), Ok("rust-101"));
    }

    #[test]
    fn bad_room_specs_are_refused() {
        assert_eq!(Rooms::parse(""), Err(InvalidRooms::Empty));
        assert_eq!(Rooms::parse(" , "), Err(InvalidRooms::Empty));
        assert_eq!(Rooms::parse("a,a"), Err(InvalidRooms::Duplicate("a".into())));
        assert_eq!(Rooms::parse("a="), Err(InvalidRooms::EmptyChannel("a".into())));
        assert!(matches!(Rooms::parse("a b"), Err(InvalidRooms::Name(_))));
        assert!(matches!(Rooms::parse("../etc"), Err(InvalidRooms::Name(_))));
        assert!(matches!(Rooms::parse(&"r".repeat(65)), Err(InvalidRooms::Name(_))));
    }
}
