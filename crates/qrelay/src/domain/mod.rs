//! The question domain: types that parse untrusted input once and can't be invalid afterwards.
//! Nothing here performs I/O, builds a client or reads the environment.

mod question;
mod room;
mod text;

pub use question::{InvalidMessage, Question, QuestionId, QuestionMessage};
pub(crate) use room::UnknownRoom;
pub use room::{InvalidRoomName, InvalidRooms, Room, RoomName, Rooms};
pub use text::{InvalidText, Limits, Nickname, QuestionText, TooLong};
