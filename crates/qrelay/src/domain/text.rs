//! Free text typed by an anonymous student: the question itself and an optional nickname.
//!
//! Both are parsed once at the edge and can't be invalid afterwards: line breaks normalised to LF, trimmed,
//! stripped of control characters, bidirectional controls and invisible formatting characters, never empty (nor
//! made only of invisible characters) and never longer than their limit, counted in characters (Unicode scalar values), not bytes,
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
    /// The largest limit a deployment may configure. Rendering for the chat may add more than one UTF-16 unit per
    /// character (a zero-width space after each `@` and `#`, two units for characters outside the BMP, `> ` before
    /// each line of the quote): at worst 2.5 units a character, for lines of one `@` each. 1800 characters is what
    /// still fits Rocket.Chat's 5000-unit message limit with room for the header and the longest nickname.
    pub const MAX_CHARS_LIMIT: usize = 1800;
    /// The longest text read back from the queue. Before the chat's quote layout a deployment could allow 2000
    /// characters; such a question, still queued when the new consumer starts, is read and delivered. (Only one
    /// made mostly of one-character lines could then render over the chat's limit, and go to the dead-letter
    /// queue with that reason.)
    pub(crate) const READ_LIMIT: usize = 2000;

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

/// Normalises line breaks, removes control, bidirectional and invisible formatting characters (except the controls
/// `keep` allows), trims, and enforces the character limit. Text with nothing visible left is empty.
fn clean(raw: &str, max_chars: usize, keep: impl Fn(char) -> bool) -> Result<String, InvalidText> {
    // Line breaks first: a lone CR (old Mac, some mobile keyboards) is a line break, not a control to delete.
    // U+2028 and U+2029 too: JavaScript (so Rocket.Chat's message parser) starts a new line at them, and a line
    // the chat sees must be a line qrelay sees, or it could begin outside the question's quote block.
    let normalised = raw.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}'], "\n");
    let stripped: String = normalised
        .chars()
        .filter(|&c| (!c.is_control() || keep(c)) && !is_bidi_control(c) && !is_stripped_invisible(c))
        .collect();
    let trimmed = stripped.trim();
    // ZWJ, ZWNJ and variation selectors are kept (emoji sequences, Persian and Indic scripts need them), but on
    // their own they show nothing: a text made only of them and whitespace would post an invisible message.
    if trimmed.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(InvalidText::Empty);
    }
    let actual = trimmed.chars().count();
    if actual > max_chars {
        return Err(TooLong { max: max_chars, actual }.into());
    }
    Ok(trimmed.to_owned())
}

/// Bidirectional embeddings, overrides, isolates and marks: they let text display in an order other than the one
/// it was typed in (`U+202E` turns `txt.exe` into `exe.txt`), which in an anonymous message is only spoofing.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Invisible characters that carry no meaning in a question: zero-width space, word joiner, byte-order mark, soft
/// hyphen, Mongolian vowel separator, combining grapheme joiner, invisible math operators, Hangul fillers.
fn is_stripped_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{2060}'
            ..='\u{2064}'
                | '\u{FEFF}'
                | '\u{00AD}'
                | '\u{180E}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{FFA0}'
    )
}

/// Characters that render as nothing on their own but are kept because they shape visible text around them.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
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

    #[test]
    fn invisible_only_question_is_rejected() {
        for raw in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}\u{FEFF}\u{AD}",
            " \u{200B} \n\u{2060}",
            "\u{202E}",
        ] {
            assert_eq!(QuestionText::parse(raw, MAX), Err(InvalidText::Empty), "input {raw:?}");
        }
    }

    #[test]
    fn emoji_joined_by_zwj_are_kept() {
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(
            QuestionText::parse(family, MAX).map(|t| t.to_string()),
            Ok(family.to_owned()),
            "a ZWJ emoji sequence is visible text"
        );
    }

    #[test]
    fn bidi_controls_are_stripped() {
        let cases = [
            ("abc\u{202E}fdp.exe", "abcfdp.exe"),
            ("\u{202A}a\u{202B}b\u{202C}c\u{202D}d", "abcd"),
            ("\u{2066}x\u{2067}y\u{2068}z\u{2069}", "xyz"),
            ("l\u{200E}r\u{200F}a\u{61C}", "lra"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                QuestionText::parse(raw, MAX).map(|t| t.to_string()),
                Ok(expected.to_owned()),
                "input {raw:?}"
            );
            assert_eq!(
                Nickname::parse(raw, 100).map(|t| t.to_string()),
                Ok(expected.to_owned()),
                "nickname {raw:?}"
            );
        }
    }

    #[test]
    fn lone_cr_crlf_and_unicode_separators_become_newlines() {
        let cases = [
            ("a\u{2028}b", "a\nb"),
            ("a\u{2029}b", "a\nb"),
            ("a\rb", "a\nb"),
            ("a\r\nb", "a\nb"),
            ("a\r\rb", "a\n\nb"),
            ("a\n\rb", "a\n\nb"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                QuestionText::parse(raw, MAX).map(|t| t.to_string()),
                Ok(expected.to_owned()),
                "input {raw:?}"
            );
        }
    }
}
