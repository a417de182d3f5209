//! Sample questions and the sample events in `events/`, for tests and benchmarks.

use qrelay::domain::{Question, QuestionId, QuestionText, RoomName};

/// A new question in `room` with `text`, submitted now, without a nickname.
pub fn question(room: &str, text: &str) -> Question {
    Question {
        id: QuestionId::new_random(),
        room: RoomName::parse(room).expect("a valid sample room"),
        text: QuestionText::parse(text, QuestionText::MAX_CHARS_LIMIT).expect("a valid sample text"),
        nickname: None,
        submitted_at: jiff::Timestamp::now(),
    }
}

/// The text of `events/<name>`, the sample events `cargo lambda invoke --data-file` uses.
pub fn event(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
