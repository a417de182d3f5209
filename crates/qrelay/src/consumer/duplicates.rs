//! Identical questions in a room, close together, are posted once: a script (or a student tapping Send again and
//! again with a new page each time) can't fill the channel with one text. The key is the room and the text with
//! case and spacing folded, hashed in memory: nothing about who asked, and no text kept.
//!
//! It remembers what this execution environment posted: the event source runs at most `MaximumConcurrency`
//! (2) consumers at once, so a flood of one text posts at most that many copies per window, not hundreds.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{Question, QuestionId};

/// How long a text posted in a room suppresses the same text there.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(60);

/// Most texts remembered at once; older ones are forgotten first (a window's worth of a busy class is far less).
const MAX_REMEMBERED: usize = 10_000;

/// The texts posted recently, by room.
#[derive(Debug)]
pub(crate) struct RecentTexts {
    window: Duration,
    posted: Mutex<HashMap<u64, (QuestionId, Instant)>>,
}

impl RecentTexts {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            posted: Mutex::new(HashMap::new()),
        }
    }

    /// The question whose identical text was posted in the same room within the window, if another one was.
    pub(crate) fn duplicate_of(&self, question: &Question) -> Option<QuestionId> {
        let posted = self.posted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        posted
            .get(&key(question))
            .filter(|(id, at)| *id != question.id && at.elapsed() < self.window)
            .map(|(id, _)| *id)
    }

    /// Remembers that `question` is in the chat.
    pub(crate) fn posted(&self, question: &Question) {
        let mut posted = self.posted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = self.window;
        posted.retain(|_, (_, at)| at.elapsed() < window);
        if posted.len() >= MAX_REMEMBERED {
            if let Some(oldest) = posted.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                posted.remove(&oldest);
            }
        }
        posted.insert(key(question), (question.id, Instant::now()));
    }
}

/// The room and the text with case folded and every run of white space made one space.
fn key(question: &Question) -> u64 {
    let mut hasher = DefaultHasher::new();
    question.room.as_ref().hash(&mut hasher);
    for word in question.text.as_ref().split_whitespace() {
        word.to_lowercase().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{QuestionText, RoomName};

    fn question(room: &str, text: &str) -> Question {
        Question {
            id: QuestionId::new_random(),
            room: RoomName::parse(room).expect("room"),
            text: QuestionText::parse(text, 1000).expect("text"),
            nickname: None,
            submitted_at: jiff::Timestamp::now(),
        }
    }

    #[test]
    fn the_same_text_in_the_same_room_is_a_duplicate_whatever_its_case_and_spacing() {
        let recent = RecentTexts::new(DUPLICATE_WINDOW);
        let first = question("general", "What is a lifetime?");
        recent.posted(&first);
        for text in [
            "What is a lifetime?",
            "what  is a\nLIFETIME?",
            "  What is a lifetime?  ",
        ] {
            assert_eq!(
                recent.duplicate_of(&question("general", text)),
                Some(first.id),
                "{text:?}"
            );
        }
        for (room, text) in [("rust-101", "What is a lifetime?"), ("general", "What is a lifetime??")] {
            assert_eq!(recent.duplicate_of(&question(room, text)), None, "{room} {text:?}");
        }
        assert_eq!(
            recent.duplicate_of(&first),
            None,
            "a question is not a duplicate of itself"
        );
    }

    #[test]
    fn after_the_window_the_same_text_is_posted_again() {
        let recent = RecentTexts::new(Duration::from_millis(50));
        recent.posted(&question("general", "again?"));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(recent.duplicate_of(&question("general", "again?")), None);
    }
}
