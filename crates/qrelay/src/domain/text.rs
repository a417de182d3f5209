//! Free text typed by an anonymous student: the question itself and an optional nickname.
//!
//! Both are parsed once at the edge and can't be invalid afterwards: trimmed, stripped of control characters,
//! never empty and never longer than their limit, counted in characters (Unicode scalar values), not bytes,
//! because most of our students write Japanese.

use std::fmt;

/// The question a student asked: trimmed, not empty, at most a configured number of characters, free of control
/// characters other than newline and tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionText(String);

/// An optional pseudonym the student chose to show with the question: one line, trimmed, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

/// Why a piece of free text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidText {
    #[error("the text is empty")]
    Empty,
    #[error(transparent)]
    TooLong(#[from] TooLong),
}

/// Text longer than its limit, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text has {actual} characters; at most {max} are allowed")]
pub struct TooLong {
    pub(crate) max: usize,
    pub(crate) actual: usize,
}

impl QuestionText {
    /// The default limit, in characters.
    pub(crate) const DEFAULT_MAX_CHARS: usize = 1000;
    /// The largest limit a deployment may configure. Rendering for the chat may double the UTF-16 length of the
    /// text (a zero-width space after each `@` and `#`, two units for characters outside the BMP), so 2000
    /// characters is what still fits Rocket.Chat's 5000-unit message limit with room for the header.
    pub const MAX_CHARS_LIMIT: usize = 2000;

    /// Parses raw input into a question, keeping newlines and tabs.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, InvalidText> {
        clean(raw, max_chars, |c| c == '\n' || c == '\t').map(Self)
    }
}

impl Nickname {
    /// The default limit, in characters.
    pub(crate) const DEFAULT_MAX_CHARS: usize = 40;
    /// The largest limit a deployment may configure (see [`QuestionText::MAX_CHARS_LIMIT`]).
    pub(crate) const MAX_CHARS_LIMIT: usize = 100;

    /// Parses raw input into a nickname. Line breaks and tabs are not kept: a nickname is one line.
    pub(crate) fn parse(raw: &str, max_chars: usize) -> Result<Self, InvalidText> {
        clean(raw, max_chars, |_| false).map(Self)
    }

    /// Parses an optional nickname: absent or blank input means the student chose none.
    pub(crate) fn parse_optional(raw: Option<&str>, max_chars: usize) -> Result<Option<Self>, TooLong> {
        match raw.map(|raw| Self::parse(raw, max_chars)) {
            None | Some(Err(InvalidText::Empty)) => Ok(None),
            Some(Err(InvalidText::TooLong(too_long))) => Err(too_long),
            Some(Ok(nickname)) => Ok(Some(nickname)),
        }
    }
}

/// How much a student may type, in characters: the question and the nickname. A deployment configures them
/// within [`QuestionText::MAX_CHARS_LIMIT`] and `Nickname::MAX_CHARS_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Default [`QuestionText::DEFAULT_MAX_CHARS`].
    pub(crate) question_chars: usize,
    /// Default [`Nickname::DEFAULT_MAX_CHARS`].
    pub(crate) nickname_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            question_chars: QuestionText::DEFAULT_MAX_CHARS,
            nickname_chars: Nickname::DEFAULT_MAX_CHARS,
        }
    }
}

/// Removes control characters (except the ones `keep` allows), trims, and enforces the character limit.
fn clean(raw: &str, max_chars: usize, keep: impl Fn(char) -> bool) -> Result<String, InvalidText> {
    let stripped: String = raw.chars().filter(|&c| !c.is_control() || keep(c)).collect();
    let trimmed = stripped.trim();
    if trimmed.is_empty() {
        return Err(InvalidText::Empty);
    }
    let actual = trimmed.chars().count();
    if actual > max_chars {
        return Err(TooLong { max: max_chars, actual }.into());
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_impls {
    ($($ty:ty),*) => {$(
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
text_impls!(QuestionText, Nickname);

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = QuestionText::DEFAULT_MAX_CHARS;

    #[test]
    fn japanese_text_of_exactly_the_limit_is_accepted() {
        let text = "質".repeat(MAX);
        assert_eq!(
            text.len(),
            3 * MAX,
            "each kanji is three bytes, so a byte count would reject it"
        );
        let parsed = QuestionText::parse(&text, MAX).expect("exactly the limit in characters must be accepted");
        assert_eq!(parsed.as_ref().chars().count(), MAX);
    }

    #[test]
    fn japanese_text_one_character_over_the_limit_is_rejected() {
        let text = "問".repeat(MAX + 1);
        assert_eq!(
            QuestionText::parse(&text, MAX),
            Err(InvalidText::TooLong(TooLong {
                max: MAX,
                actual: MAX + 1
            }))
        );
    }

    #[test]
    fn characters_outside_the_bmp_count_once() {
        let text = "🎉".repeat(10);
        assert!(
            QuestionText::parse(&text, 10).is_ok(),
            "an emoji is one character, even if two UTF-16 units"
        );
        assert!(QuestionText::parse(&text, 9).is_err());
    }

    #[test]
    fn whitespace_only_question_is_rejected() {
        for raw in ["", " ", "\n\t  \n", "\u{3000}\u{3000}", "\u{0}\u{7}"] {
            assert_eq!(QuestionText::parse(raw, MAX), Err(InvalidText::Empty), "input {raw:?}");
        }
    }

    #[test]
    fn control_characters_are_stripped_but_newlines_and_tabs_kept() {
        let cases = [
            ("a\u{0}b", "ab"),
            ("line one\r\nline two", "line one\nline two"),
            ("col\tcol", "col\tcol"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred[0m"),
            ("  padded \u{7f} ", "padded"),
            ("\u{85}next", "next"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                QuestionText::parse(raw, MAX).map(|t| t.to_string()),
                Ok(expected.to_owned()),
                "input {raw:?}"
            );
        }
    }

    #[test]
    fn the_limit_applies_after_trimming() {
        let raw = format!("   {}   ", "x".repeat(5));
        assert_eq!(
            QuestionText::parse(&raw, 5).map(|t| t.to_string()),
            Ok("xxxxx".to_owned())
        );
    }

    #[test]
    fn nickname_is_one_line() {
        let nick = Nickname::parse("たろう\nTaro\t", 40).expect("valid nickname");
        assert_eq!(nick.as_ref(), "たろうTaro");
    }

    #[test]
    fn nickname_limits_are_enforced_in_characters() {
        let max = Nickname::DEFAULT_MAX_CHARS;
        assert!(Nickname::parse(&"名".repeat(max), max).is_ok(), "exactly the limit");
        assert_eq!(
            Nickname::parse(&"名".repeat(max + 1), max),
            Err(InvalidText::TooLong(TooLong { max, actual: max + 1 }))
        );
    }

    #[test]
    fn blank_or_absent_nickname_means_none() {
        assert_eq!(Nickname::parse_optional(None, 40), Ok(None));
        assert_eq!(Nickname::parse_optional(Some("  \t"), 40), Ok(None));
        assert_eq!(
            Nickname::parse_optional(Some(" Ken "), 40).map(|n| n.map(|n| n.to_string())),
            Ok(Some("Ken".into()))
        );
        assert!(
            Nickname::parse_optional(Some(&"x".repeat(41)), 40).is_err(),
            "too long is an error, not None"
        );
    }
}
