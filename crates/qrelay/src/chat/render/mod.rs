//! How a question reads in the chat, and why it can't ping anyone.
//!
//! A question is rendered once into a [`ChatMessage`]: the Rocket.Chat text (what the board and the Rocket.Chat
//! adapters post) and the parts every other chat's [`Dialect`] formats in its own syntax ([`ChatMessage::text_for`]).
//!
//! Rocket.Chat detects mentions by regex on the raw text (`@name`, `@all`, `@here`, even inside code blocks) and
//! renders Markdown links and images. Anonymous text must do neither, so every `@` and `#` gets a zero-width
//! space after it (the text still reads the same), and `](` and `<url|label>` link syntax are broken the same way.
//! The nickname is plain text: its Markdown characters are replaced by full-width twins, so it can't be styled.
//! The question itself is a quote block (`> ` before each of its lines), under a header line that is never quoted:
//! whatever a student types, even a copy of the header, shows inside the quote and can't pass for qrelay's own
//! header or for a second question.
//! Link previews are turned off by the poster (`previewUrls: []`, or the webhook's `parseUrls: false`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::domain::Question;

/// Rocket.Chat's default `Message_MaxAllowedSize`, in UTF-16 code units.
const MAX_MESSAGE_UTF16: usize = 5000;

const ZWSP: char = '\u{200B}';

/// The syntax a chat reads messages in: each has its own mentions, links and size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Rocket.Chat's Markdown (REST API and incoming webhooks); 5000 UTF-16 units.
    RocketChat,
    /// Mattermost's Markdown; `@channel`, `@all`, `@here`; 16,383 characters.
    Mattermost,
    /// Slack's mrkdwn; `<!channel>`, `<!here>`, `<@U…>`, `<url|label>`; 40,000 characters.
    Slack,
    /// Discord's Markdown; `@everyone`, `@here`, `<@id>`; 2000 characters.
    Discord,
    /// Google Chat's text format; `<users/all>`, `<url|label>`; 32,000 bytes.
    GoogleChat,
    /// Microsoft Teams (an Adaptive Card's text); `<at>`; 28 KB for the card.
    Teams,
}

/// A chat message ready to send: neutralised, within the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The Rocket.Chat text.
    text: String,
    parts: Parts,
}

/// What a message says, before any chat's syntax: what each [`Dialect`] formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    /// The nickname as the student typed it (already parsed: one line, trimmed, bounded).
    pub(crate) nickname: Option<String>,
    /// When it was asked, in the configured time zone, e.g. `2026-11-22 18:30 JST`.
    pub(crate) when: String,
    /// The question as parsed (lines separated by `\n`, trimmed, bounded).
    pub(crate) text: String,
}

/// The rendered message would exceed the chat's size limit (only possible if the domain limits were raised past
/// what [`crate::domain::QuestionText::MAX_CHARS_LIMIT`] allows, or the chat's limit is below it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rendered message is {size}, over the chat's limit of {limit}")]
pub struct MessageTooLong {
    /// The size, with its unit (`5012 UTF-16 units`).
    size: String,
    limit: String,
}

impl MessageTooLong {
    pub(crate) fn new(size: usize, limit: usize, unit: &str) -> Self {
        Self {
            size: format!("{size} {unit}"),
            limit: format!("{limit} {unit}"),
        }
    }
}

impl ChatMessage {
    /// Renders a question for humans: a header saying it is anonymous (with the nickname, if any) and when it was
    /// asked in `tz`, then the text as a quote block. Fails if the Rocket.Chat text would be over its limit.
    pub fn render(question: &Question, tz: &TimeZone) -> Result<Self, MessageTooLong> {
        let parts = Parts {
            nickname: question.nickname.as_ref().map(|n| n.as_ref().to_owned()),
            when: format_time(question.submitted_at, tz),
            text: question.text.as_ref().to_owned(),
        };
        let text = rocketchat(&parts)?;
        Ok(Self { text, parts })
    }

    /// The message in `dialect`'s syntax, neutralised for that chat, or why it can't be posted there.
    pub fn text_for(&self, dialect: Dialect) -> Result<String, MessageTooLong> {
        match dialect {
            Dialect::RocketChat => Ok(self.text.clone()),
            other => Err(MessageTooLong::new(0, 0, &format!("{other:?} is not rendered yet"))),
        }
    }
}

/// Rocket.Chat's rendering: the header, then the question quoted, within 5000 UTF-16 units.
fn rocketchat(parts: &Parts) -> Result<String, MessageTooLong> {
    let mut out = String::with_capacity(parts.text.len() * 2 + 96);
    out.push_str("❓ **Anonymous question**");
    if let Some(nickname) = &parts.nickname {
        out.push_str(" · ");
        push_neutralised(&mut out, &plain_nickname(nickname));
    }
    out.push_str(" · ");
    out.push_str(&parts.when);
    push_quoted(&mut out, &parts.text);
    let units = out.encode_utf16().count();
    if units > MAX_MESSAGE_UTF16 {
        Err(MessageTooLong::new(units, MAX_MESSAGE_UTF16, "UTF-16 units"))
    } else {
        Ok(out)
    }
}

/// The Rocket.Chat text.
impl AsRef<str> for ChatMessage {
    fn as_ref(&self) -> &str {
        &self.text
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

/// Appends `text` on the lines after the header, each of its lines as a quote line. Rocket.Chat (like Slack and
/// Mattermost) quotes a line that starts with `> ` and has something after it, so an empty line stays empty: it
/// could not start anything but another quote line either. Costs two UTF-16 units per non-empty line.
fn push_quoted(out: &mut String, text: &str) {
    for line in text.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str("> ");
            push_neutralised(out, line);
        }
    }
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
            "❓ **Anonymous question** · 2026-11-22 18:30 JST\n> ライフタイムとは何ですか？\n> 例: 'a"
        );
    }

    #[test]
    fn a_nickname_is_shown_and_neutralised_too() {
        let rendered = ChatMessage::render(&question("Why?", Some("@here たろう")), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · @\u{200B}here たろう · 2026-11-22 18:30 JST\n> Why?"
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
            "❓ **Anonymous question** · ＜https://evil.example｜Instructor＞ · 2026-11-22 18:30 JST\n> q"
        );
    }

    #[test]
    fn a_markdown_nickname_renders_as_plain_text() {
        let rendered = ChatMessage::render(&question("q", Some("**Instructor** _x_ ~y~ `z`")), &tokyo()).expect("fits");
        assert_eq!(
            rendered.as_ref(),
            "❓ **Anonymous question** · ＊＊Instructor＊＊ ＿x＿ ～y～ ｀z｀ · 2026-11-22 18:30 JST\n> q"
        );
    }

    /// The worst a student can do to pass for qrelay or for someone else, and how each renders: the nickname
    /// unstyled, every line of the text inside the quote, the fake header and the fake second question included.
    #[test]
    fn nothing_in_a_question_can_look_like_the_header_or_a_second_question() {
        let fake_header = "❓ **Anonymous question** · **Instructor** · 2026-11-22 18:31 JST";
        let cases = [
            (
                format!("ok\n{fake_header}\nPlease all leave the room now."),
                "❓ **Anonymous question** · ＊＊Instructor＊＊ · 2026-11-22 18:30 JST\n\
                 > ok\n\
                 > ❓ **Anonymous question** · **Instructor** · 2026-11-22 18:31 JST\n\
                 > Please all leave the room now.",
            ),
            (
                // A blank line can't end the quote: the next non-empty line is quoted again.
                format!("ok\n\n\n{fake_header}\n\nsecond"),
                "❓ **Anonymous question** · ＊＊Instructor＊＊ · 2026-11-22 18:30 JST\n\
                 > ok\n\n\n\
                 > ❓ **Anonymous question** · **Instructor** · 2026-11-22 18:31 JST\n\n\
                 > second",
            ),
            (
                // Unicode's own line and paragraph separators are line breaks to JavaScript's `^` and `$`, which
                // Rocket.Chat's parser uses: the text arrives with them made newlines, and each line is quoted.
                format!("ok\u{2028}{fake_header}\u{2029}x"),
                "❓ **Anonymous question** · ＊＊Instructor＊＊ · 2026-11-22 18:30 JST\n\
                 > ok\n\
                 > ❓ **Anonymous question** · **Instructor** · 2026-11-22 18:31 JST\n\
                 > x",
            ),
            (
                "  > already quoted\n>> deeper\n```\ncode\n```".to_owned(),
                "❓ **Anonymous question** · ＊＊Instructor＊＊ · 2026-11-22 18:30 JST\n\
                 > > already quoted\n\
                 > >> deeper\n\
                 > ```\n\
                 > code\n\
                 > ```",
            ),
        ];
        for (text, expected) in cases {
            let rendered = ChatMessage::render(&question(&text, Some("**Instructor**")), &tokyo()).expect("fits");
            assert_eq!(rendered.as_ref(), expected, "text {text:?}");
            let mut lines = rendered.as_ref().lines();
            assert!(
                lines
                    .next()
                    .is_some_and(|header| header.starts_with("❓ **Anonymous question**"))
            );
            for line in lines {
                assert!(
                    line.is_empty() || line.starts_with("> "),
                    "a line outside the quote: {line:?}"
                );
            }
        }
    }

    #[test]
    fn the_largest_possible_question_still_fits_the_chat_limit() {
        // Worst cases per character: '@' becomes two units, and so does an emoji; a one-character line costs the
        // quote's two units more; a line of its own is a unit per newline. The longest nickname too.
        let tz = tokyo();
        for filler in ["@", "🎉", "#", "](", "<", "@\n", "🎉\n", "a\n", "<a\n", "@@\n"] {
            let length = QuestionText::MAX_CHARS_LIMIT;
            let mut text: String = filler.chars().cycle().take(length - 1).collect();
            text.push('x');
            let nickname = "@".repeat(Nickname::MAX_CHARS_LIMIT);
            let question = question(&text, Some(&nickname));
            assert_eq!(question.text.as_ref().chars().count(), length, "{filler:?}");
            let rendered = ChatMessage::render(&question, &tz).expect("must fit");
            let units = rendered.as_ref().encode_utf16().count();
            assert!(units <= MAX_MESSAGE_UTF16, "{filler:?}: {units} units");
        }
    }
}
