//! How a question reads in the chat, and why it can't ping anyone.
//!
//! Rocket.Chat detects mentions by regex on the raw text (`@name`, `@all`, `@here`, even inside code blocks) and
//! renders Markdown links and images. Anonymous text must do neither, so every `@` and `#` gets a zero-width
//! space after it (the text still reads the same), and `](` and `<url|label>` link syntax are broken the same way.
//! The nickname is plain text: its Markdown characters are replaced by full-width twins, so it can't be styled.
//! Link previews are turned off by the poster (`previewUrls: []`, or the webhook's `parseUrls: false`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::domain::Question;

/// Rocket.Chat's default `Message_MaxAllowedSize`, in UTF-16 code units.
const MAX_MESSAGE_UTF16: usize = 5000;

const ZWSP: char = '\u{200B}';

/// A chat message ready to send: neutralised, within the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage(String);

/// The rendered message would exceed the chat's size limit (only possible if the domain limits were raised past
/// what [`crate::domain::QuestionText::MAX_CHARS_LIMIT`] allows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rendered message has {0} UTF-16 units, over the chat's limit of {MAX_MESSAGE_UTF16}")]
pub struct MessageTooLong(usize);

impl ChatMessage {
    /// Renders a question for humans: a header saying it is anonymous (with the nickname, if any) and when it was
    /// asked in `tz`, then the text.
    pub fn render(question: &Question, tz: &TimeZone) -> Result<Self, MessageTooLong> {
        let when = format_time(question.submitted_at, tz);
        let mut out = String::with_capacity(question.text.as_ref().len() * 2 + 96);
        out.push_str("❓ **Anonymous question**");
        if let Some(nickname) = &question.nickname {
            out.push_str(" · ");
            push_neutralised(&mut out, &plain_nickname(nickname.as_ref()));
        }
        out.push_str(" · ");
        out.push_str(&when);
        out.push('\n');
        push_neutralised(&mut out, question.text.as_ref());
        let units = out.encode_utf16().count();
        if units > MAX_MESSAGE_UTF16 {
            Err(MessageTooLong(units))
        } else {
            Ok(Self(out))
        }
    }
}

impl AsRef<str> for ChatMessage {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn format_time(at: Timestamp, tz: &TimeZone) -> String {
    let zoned = at.to_zoned(tz.clone());
    // `%Z` is the abbreviation (JST); zones without one print their offset instead.
    zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// The nickname as plain text: every character Markdown could use to style it or make it a link is replaced by
/// its full-width twin, so a nickname like `**Instructor**` shows its asterisks instead of bold text. Each
/// replacement is one UTF-16 unit, like the character it replaces.
fn plain_nickname(nickname: &str) -> String {
    nickname
        .chars()
        .map(|c| match c {
            '*' => '＊',
            '_' => '＿',
            '~' => '～',
            '`' => '｀',
            '[' => '［',
            ']' => '］',
            '<' => '＜',
            '>' => '＞',
            '|' => '｜',
            '\\' => '＼',
            other => other,
        })
        .collect()
}

/// Appends `text` with mentions, channel links and Markdown links defused, including Slack-style disguised links
/// `<https://evil.example|Official slides>`, which Rocket.Chat renders as a link showing only the label.
fn push_neutralised(out: &mut String, text: &str) {
    let mut previous = '\0';
    for c in text.chars() {
        if (c == '(' && previous == ']') || previous == '<' {
            out.push(ZWSP);
        }
        out.push(c);
        if c == '@' || c == '#' {
            out.push(ZWSP);
        }
        previous = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Nickname, QuestionId, QuestionText, RoomName};

    fn question(text: &str, nickname: Option<&str>) -> Question {
        Question {
            id: QuestionId::new_random(),
            room: RoomName::parse("rust-101").expect("room"),
            text: QuestionText::parse(text, QuestionText::MAX_CHARS_LIMIT).expect("text"),
            nickname: nickname.map(|n| Nickname::parse(n, Nickname::MAX_CHARS_LIMIT).expect("nickname")),
            submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
        }
    }

    fn tokyo() -> TimeZone {
        TimeZone::get("Asia/Tokyo").expect("bundled tzdb")
    }

    #[test]
    fn a_japanese_question_renders_with_tokyo_time() {
        let rendered =
            ChatMessage::render(&question("ライフタイムとは何ですか？\n例: 'a", None), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · 2026-11-22 18:30 JST\nライフタイムとは何ですか？\n例: 'a"
        );
    }

    #[test]
    fn a_nickname_is_shown_and_neutralised_too() {
        let rendered = ChatMessage::render(&question("Why?", Some("@here たろう")), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · @\u{200B}here たろう · 2026-11-22 18:30 JST\nWhy?"
        );
    }

    #[test]
    fn other_time_zones_are_honoured() {
        let utc = ChatMessage::render(&question("q", None), &TimeZone::UTC).expect("fits");
        assert!(utc.as_ref().contains("2026-11-22 09:30 UTC"), "{}", utc.as_ref());
        let ny =
            ChatMessage::render(&question("q", None), &TimeZone::get("America/New_York").expect("tz")).expect("fits");
        assert!(ny.as_ref().contains("2026-11-22 04:30 EST"), "{}", ny.as_ref());
    }

    #[test]
    fn mentions_channels_and_links_are_defused() {
        let cases = [
            ("@all help", "@\u{200B}all help"),
            ("hi @here and @taro", "hi @\u{200B}here and @\u{200B}taro"),
            ("see #general", "see #\u{200B}general"),
            ("[click](https://evil.example)", "[click]\u{200B}(https://evil.example)"),
            ("![img](https://x/y.png)", "![img]\u{200B}(https://x/y.png)"),
            ("mail a@b.c", "mail a@\u{200B}b.c"),
            ("全角＠all はそのまま", "全角＠all はそのまま"),
        ];
        for (raw, expected) in cases {
            let mut out = String::new();
            push_neutralised(&mut out, raw);
            assert_eq!(out, expected, "input {raw:?}");
        }
    }

    #[test]
    fn disguised_links_are_defused() {
        let mut out = String::new();
        push_neutralised(&mut out, "<https://evil.example/login|Official lecture slides>");
        assert_eq!(out, "<\u{200B}https://evil.example/login|Official lecture slides>");
        let rendered =
            ChatMessage::render(&question("q", Some("<https://evil.example|Instructor>")), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · ＜https://evil.example｜Instructor＞ · 2026-11-22 18:30 JST\nq"
        );
    }

    #[test]
    fn a_markdown_nickname_renders_as_plain_text() {
        let rendered = ChatMessage::render(&question("q", Some("**Instructor** _x_ ~y~ `z`")), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · ＊＊Instructor＊＊ ＿x＿ ～y～ ｀z｀ · 2026-11-22 18:30 JST\nq"
        );
    }

    #[test]
    fn the_largest_possible_question_still_fits_the_chat_limit() {
        // Worst case per character: '@' becomes two units, and so does an emoji; the longest nickname too.
        let tz = tokyo();
        for filler in ["@", "🎉", "#", "](", "<"] {
            let text: String = filler.repeat(QuestionText::MAX_CHARS_LIMIT / filler.chars().count());
            let nickname = "@".repeat(Nickname::MAX_CHARS_LIMIT);
            let rendered = ChatMessage::render(&question(&text, Some(&nickname)), &tz).expect("must fit");
            let units = rendered.as_ref().encode_utf16().count();
            assert!(units <= MAX_MESSAGE_UTF16, "{filler:?}: {units} units");
        }
    }
}
