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

use crate::domain::{Nickname, Question, QuestionText};

mod discord;
mod google_chat;
mod mattermost;
mod slack;
mod teams;

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
    /// qrelay's own words (a notice), the same in every dialect: no student text, no markup, no mention.
    own_words: bool,
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
        Ok(Self {
            text,
            parts,
            own_words: false,
        })
    }

    /// qrelay's notice that a flood of questions is being held (ja and en): fixed words, no student's text, so it
    /// reads the same in every chat.
    pub fn flood_notice() -> Self {
        let text = "Many questions arrived at once: the rest are held for the instructor to review.\n\
                    一度に多くの質問が届いたため、残りの質問は講師の確認待ちになりました。";
        Self {
            text: text.to_owned(),
            parts: Parts {
                nickname: None,
                when: String::new(),
                text: text.to_owned(),
            },
            own_words: true,
        }
    }

    /// The message in `dialect`'s syntax, neutralised for that chat, or why it can't be posted there.
    pub fn text_for(&self, dialect: Dialect) -> Result<String, MessageTooLong> {
        if self.own_words {
            return Ok(self.text.clone());
        }
        match dialect {
            Dialect::RocketChat => Ok(self.text.clone()),
            other => other.budget().checked((other.budget().render)(&self.parts)),
        }
    }
}

/// Room every [`Dialect::max_question_chars`] leaves for what an adapter adds to the text (Discord's `-# qrelay …`
/// marker line is 34 characters), in the dialect's unit.
const ADAPTER_RESERVE: usize = 64;

/// The longest `when` budgeted for: `2026-11-22 18:30 ` and a zone abbreviation or offset (at most 6 today).
const WHEN_MAX_CHARS: usize = 32;

/// How a dialect renders and measures a message, and its worst case per character (checked by each dialect's
/// tests against every character that costs it more than one unit).
pub(crate) struct Budget {
    /// The chat's limit, in `unit`.
    limit: usize,
    unit: &'static str,
    /// The size of a rendered message, in `unit`.
    size: fn(&str) -> usize,
    /// The whole message.
    render: fn(&Parts) -> String,
    /// The nickname character that costs the most once rendered.
    worst_nickname_char: char,
    /// The most one character of the question (not a newline) costs once rendered.
    char_max: usize,
    /// The most a newline costs with what starts the next line (the quote marker; a Teams paragraph).
    line_cost: usize,
}

impl Budget {
    fn checked(&self, text: String) -> Result<String, MessageTooLong> {
        let size = (self.size)(&text);
        if size > self.limit {
            Err(MessageTooLong::new(size, self.limit, self.unit))
        } else {
            Ok(text)
        }
    }

    /// See [`Dialect::max_question_chars`]. A question of n characters costs at most `line_cost` (its first line's
    /// quote) plus n × max(char_max, (line_cost + char_max) / 2): a newline costs the most with a character after
    /// it (an empty line costs less), so the worst text alternates one character and a newline, or repeats the
    /// costliest character.
    fn max_question_chars(&self) -> usize {
        let nickname: String = std::iter::repeat_n(self.worst_nickname_char, Nickname::MAX_CHARS_LIMIT).collect();
        let header = (self.size)(&(self.render)(&Parts {
            nickname: Some(nickname),
            when: "W".repeat(WHEN_MAX_CHARS),
            text: String::new(),
        }));
        let per_two = (2 * self.char_max).max(self.line_cost + self.char_max);
        let available = self.limit.saturating_sub(ADAPTER_RESERVE + header + self.line_cost);
        (available * 2 / per_two).min(QuestionText::MAX_CHARS_LIMIT)
    }
}

impl Dialect {
    fn budget(self) -> &'static Budget {
        match self {
            Dialect::RocketChat => &ROCKETCHAT,
            Dialect::Mattermost => &mattermost::BUDGET,
            Dialect::Slack => &slack::BUDGET,
            Dialect::Discord => &discord::BUDGET,
            Dialect::GoogleChat => &google_chat::BUDGET,
            Dialect::Teams => &teams::BUDGET,
        }
    }

    /// The largest `MAX_QUESTION_CHARS` for which every question (the worst characters for this dialect's escaping
    /// and quoting, with the longest nickname of its worst characters and [`ADAPTER_RESERVE`] to spare) fits the
    /// chat's limit; never above [`QuestionText::MAX_CHARS_LIMIT`].
    pub fn max_question_chars(self) -> usize {
        self.budget().max_question_chars()
    }
}

static ROCKETCHAT: Budget = Budget {
    limit: MAX_MESSAGE_UTF16,
    unit: "UTF-16 units",
    size: utf16_units,
    render: rocketchat_text,
    worst_nickname_char: '@',
    char_max: 2,
    line_cost: 3,
};

fn utf16_units(text: &str) -> usize {
    text.encode_utf16().count()
}

pub(crate) fn chars(text: &str) -> usize {
    text.chars().count()
}

/// The header every dialect but Slack's and Google Chat's shares (they bold with single `*`): bold in
/// `bold`, then the nickname (already made plain and defused by the dialect) and the time.
pub(crate) fn push_header(out: &mut String, bold: &str, nickname: Option<&str>, when: &str) {
    out.push_str("❓ ");
    out.push_str(bold);
    out.push_str("Anonymous question");
    out.push_str(bold);
    if let Some(nickname) = nickname {
        out.push_str(" · ");
        out.push_str(nickname);
    }
    out.push_str(" · ");
    out.push_str(when);
}

/// Appends `text` with a zero-width space after each character in `after`: `@` and `#` can't start a mention or
/// a channel link, `<` can't open `<@id>`, `<!here>` or `<url|label>`, `]` can't close a link's label (inline
/// `[x](url)`, reference `[x][r]` or a definition `[r]: url`).
pub(crate) fn push_zwsp_after(out: &mut String, text: &str, after: &[char]) {
    for c in text.chars() {
        out.push(c);
        if after.contains(&c) {
            out.push(ZWSP);
        }
    }
}

/// Appends each line of `text` after a newline as `> ` and the line made by `line`; an empty line stays empty.
pub(crate) fn push_quoted_with(out: &mut String, text: &str, line: impl Fn(&mut String, &str)) {
    for l in text.split('\n') {
        out.push('\n');
        if !l.is_empty() {
            out.push_str("> ");
            line(out, l);
        }
    }
}

/// Rocket.Chat's rendering: the header, then the question quoted, within 5000 UTF-16 units.
fn rocketchat(parts: &Parts) -> Result<String, MessageTooLong> {
    ROCKETCHAT.checked(rocketchat_text(parts))
}

fn rocketchat_text(parts: &Parts) -> String {
    let mut out = String::with_capacity(parts.text.len() * 2 + 96);
    out.push_str("❓ **Anonymous question**");
    if let Some(nickname) = &parts.nickname {
        out.push_str(" · ");
        push_neutralised(&mut out, &plain_nickname(nickname));
    }
    out.push_str(" · ");
    out.push_str(&parts.when);
    push_quoted(&mut out, &parts.text);
    out
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
pub(crate) fn plain_nickname(nickname: &str) -> String {
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

    const OTHERS: [Dialect; 5] = [
        Dialect::Mattermost,
        Dialect::Slack,
        Dialect::Discord,
        Dialect::GoogleChat,
        Dialect::Teams,
    ];

    /// Every mention form of every chat, disguised links, a fake header and a fake second question, HTML and
    /// entities, a code fence; and a nickname trying to be bold, to ping, and to be a link.
    const WORST_TEXT: &str = "@everyone @here @all @channel <!channel> <!here> <@U123> <@&42> <#C1> <users/all> \
                              <at>Boss</at> ~town #gen\n\
                              [slides](https://evil.example) ![i](https://x/y.png) [a][r]\n\
                              [r]: https://evil.example\n\
                              <https://evil.example|Official slides>\n\
                              ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n\
                              > fake\n\
                              ```\n\
                              <b>&amp;</b> \"q\"\n\
                              ```";
    const WORST_NICKNAME: &str = "**Instructor** @here <x|y> &";

    fn worst(dialect: Dialect) -> String {
        let message = ChatMessage::render(&question(WORST_TEXT, Some(WORST_NICKNAME)), &tokyo()).expect("fits");
        message.text_for(dialect).expect("fits").replace(ZWSP, "{ZWSP}")
    }

    #[test]
    fn mattermost_defuses_mentions_channel_links_and_every_link_form() {
        assert_eq!(
            worst(Dialect::Mattermost),
            "❓ **Anonymous question** · ＊＊Instructor＊＊ @{ZWSP}here ＜x｜y＞ & · 2026-11-22 18:30 JST\n> @{ZWSP}everyone @{ZWSP}here @{ZWSP}all @{ZWSP}channel <{ZWSP}!channel> <{ZWSP}!here> <{ZWSP}@{ZWSP}U123> <{ZWSP}@{ZWSP}&42> <{ZWSP}#{ZWSP}C1> <{ZWSP}users/all> <{ZWSP}at>Boss<{ZWSP}/at> ~{ZWSP}town #{ZWSP}gen\n> [slides]{ZWSP}(https://evil.example) ![i]{ZWSP}(https://x/y.png) [a]{ZWSP}[r]{ZWSP}\n> [r]{ZWSP}: https://evil.example\n> <{ZWSP}https://evil.example|Official slides>\n> ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n> > fake\n> ```\n> <{ZWSP}b>&amp;<{ZWSP}/b> \"q\"\n> ```"
        );
    }

    #[test]
    fn slack_escapes_its_control_characters_and_quotes_every_line() {
        assert_eq!(
            worst(Dialect::Slack),
            "❓ *Anonymous question* · ＊＊Instructor＊＊ @{ZWSP}here ＜x｜y＞ &amp; · 2026-11-22 18:30 JST\n> @{ZWSP}everyone @{ZWSP}here @{ZWSP}all @{ZWSP}channel &lt;!channel&gt; &lt;!here&gt; &lt;@{ZWSP}U123&gt; &lt;@{ZWSP}&amp;42&gt; &lt;#{ZWSP}C1&gt; &lt;users/all&gt; &lt;at&gt;Boss&lt;/at&gt; ~town #{ZWSP}gen\n> [slides](https://evil.example) ![i](https://x/y.png) [a][r]\n> [r]: https://evil.example\n> &lt;https://evil.example|Official slides&gt;\n> ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n> &gt; fake\n> ```\n> &lt;b&gt;&amp;amp;&lt;/b&gt; \"q\"\n> ```"
        );
    }

    #[test]
    fn discord_defuses_mentions_and_masked_links() {
        assert_eq!(
            worst(Dialect::Discord),
            "❓ **Anonymous question** · ＊＊Instructor＊＊ @{ZWSP}here ＜x｜y＞ & · 2026-11-22 18:30 JST\n> @{ZWSP}everyone @{ZWSP}here @{ZWSP}all @{ZWSP}channel <{ZWSP}!channel> <{ZWSP}!here> <{ZWSP}@{ZWSP}U123> <{ZWSP}@{ZWSP}&42> <{ZWSP}#{ZWSP}C1> <{ZWSP}users/all> <{ZWSP}at>Boss<{ZWSP}/at> ~town #{ZWSP}gen\n> [slides]{ZWSP}(https://evil.example) ![i]{ZWSP}(https://x/y.png) [a]{ZWSP}[r]{ZWSP}\n> [r]{ZWSP}: https://evil.example\n> <{ZWSP}https://evil.example|Official slides>\n> ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n> > fake\n> ```\n> <{ZWSP}b>&amp;<{ZWSP}/b> \"q\"\n> ```"
        );
    }

    #[test]
    fn google_chat_defuses_user_mentions_and_both_link_forms() {
        assert_eq!(
            worst(Dialect::GoogleChat),
            "❓ *Anonymous question* · ＊＊Instructor＊＊ @{ZWSP}here ＜x｜y＞ & · 2026-11-22 18:30 JST\n> @{ZWSP}everyone @{ZWSP}here @{ZWSP}all @{ZWSP}channel <{ZWSP}!channel> <{ZWSP}!here> <{ZWSP}@{ZWSP}U123> <{ZWSP}@{ZWSP}&42> <{ZWSP}#{ZWSP}C1> <{ZWSP}users/all> <{ZWSP}at>Boss<{ZWSP}/at> ~town #{ZWSP}gen\n> [slides]{ZWSP}(https://evil.example) ![i]{ZWSP}(https://x/y.png) [a]{ZWSP}[r]{ZWSP}\n> [r]{ZWSP}: https://evil.example\n> <{ZWSP}https://evil.example|Official slides>\n> ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n> > fake\n> ```\n> <{ZWSP}b>&amp;<{ZWSP}/b> \"q\"\n> ```"
        );
    }

    #[test]
    fn teams_makes_each_line_a_quoted_paragraph_and_defuses_at_and_links() {
        assert_eq!(
            worst(Dialect::Teams),
            "❓ **Anonymous question** · ＊＊Instructor＊＊ @{ZWSP}here ＜x｜y＞ & · 2026-11-22 18:30 JST\n\n> @{ZWSP}everyone @{ZWSP}here @{ZWSP}all @{ZWSP}channel <{ZWSP}!channel> <{ZWSP}!here> <{ZWSP}@{ZWSP}U123> <{ZWSP}@{ZWSP}&42> <{ZWSP}#{ZWSP}C1> <{ZWSP}users/all> <{ZWSP}at>Boss<{ZWSP}/at> ~town #{ZWSP}gen\n\n> [slides]{ZWSP}(https://evil.example) ![i]{ZWSP}(https://x/y.png) [a]{ZWSP}[r]{ZWSP}\n\n> [r]{ZWSP}: https://evil.example\n\n> <{ZWSP}https://evil.example|Official slides>\n\n> ❓ **Anonymous question** · Instructor · 2026-11-22 18:31 JST\n\n> > fake\n\n> ```\n\n> <{ZWSP}b>&amp;<{ZWSP}/b> \"q\"\n\n> ```"
        );
    }

    /// In every dialect, the first line is qrelay's header and every other line is empty or starts with `> `.
    #[test]
    fn in_every_dialect_nothing_typed_sits_outside_the_quote() {
        let message = ChatMessage::render(&question(WORST_TEXT, Some(WORST_NICKNAME)), &tokyo()).expect("fits");
        for dialect in OTHERS {
            let text = message.text_for(dialect).expect("fits");
            let mut lines = text.lines();
            assert!(lines.next().is_some_and(|h| h.starts_with("❓ ")), "{dialect:?}");
            for line in lines {
                assert!(line.is_empty() || line.starts_with("> "), "{dialect:?}: {line:?}");
            }
        }
    }

    /// The budget's worst case per character holds: no character costs more than `char_max` in a line, nor a
    /// newline with the next line's start more than `line_cost`, nor a nickname character more than the worst one.
    #[test]
    fn each_dialects_worst_case_per_character_is_the_worst() {
        let candidates = [
            'a', '@', '#', '~', '<', '>', '&', ']', '[', '(', '"', '\\', '*', '_', '`', '|', '\t', ':', '!', 'あ',
            '＠', '🎉', 'é',
        ];
        for dialect in std::iter::once(Dialect::RocketChat).chain(OTHERS) {
            let budget = dialect.budget();
            let size = |text: &str, nickname: Option<&str>| {
                (budget.size)(&(budget.render)(&Parts {
                    nickname: nickname.map(str::to_owned),
                    when: "w".to_owned(),
                    text: text.to_owned(),
                }))
            };
            let worst_nickname = size("x", Some(&budget.worst_nickname_char.to_string()));
            for c in candidates {
                let one = size(&format!("x{c}"), None) - size("x", None);
                assert!(one <= budget.char_max, "{dialect:?}: {c:?} costs {one}");
                let line = (size(&format!("x\n{c}"), None) - size("x", None)).saturating_sub(one);
                assert!(line <= budget.line_cost, "{dialect:?}: a line of {c:?} costs {line}");
                let nick = size("x", Some(&c.to_string()));
                assert!(nick <= worst_nickname, "{dialect:?}: nickname {c:?}");
            }
        }
    }

    #[test]
    fn the_largest_possible_question_fits_every_dialect_at_its_max_question_chars() {
        let tz = tokyo();
        for dialect in std::iter::once(Dialect::RocketChat).chain(OTHERS) {
            let length = dialect.max_question_chars();
            let budget = dialect.budget();
            for filler in [
                "@", "🎉", "#", "](", "<", "&", "\"", "@\n", "🎉\n", "a\n", "<a\n", "@@\n", "&\n", "\"\n", "a\n\n",
            ] {
                let mut text: String = filler.chars().cycle().take(length - 1).collect();
                text.push('x');
                let nickname: String =
                    std::iter::repeat_n(budget.worst_nickname_char, Nickname::MAX_CHARS_LIMIT).collect();
                let question = question(&text, Some(&nickname));
                assert_eq!(question.text.as_ref().chars().count(), length, "{filler:?}");
                let rendered = ChatMessage::render(&question, &tz).expect("fits Rocket.Chat");
                let text = rendered
                    .text_for(dialect)
                    .unwrap_or_else(|e| panic!("{dialect:?} {filler:?} at {length}: {e}"));
                let size = (budget.size)(&text);
                assert!(
                    size + ADAPTER_RESERVE <= budget.limit,
                    "{dialect:?} {filler:?}: {size} {}",
                    budget.unit
                );
            }
        }
    }

    /// The Teams margin holds for the card the Teams adapter really builds (a TextBlock per paragraph).
    #[test]
    fn the_largest_teams_question_makes_a_card_within_28_kb() {
        let length = Dialect::Teams.max_question_chars();
        for filler in ["a\n", "@\n", "🎉\n", "\"\n", "@", "🎉"] {
            let mut text: String = filler.chars().cycle().take(length - 1).collect();
            text.push('x');
            let question = question(&text, Some(&"@".repeat(Nickname::MAX_CHARS_LIMIT)));
            let message = ChatMessage::render(&question, &tokyo()).expect("fits Rocket.Chat");
            let body = crate::chat::teams::body(&message).unwrap_or_else(|e| panic!("{filler:?}: {e}"));
            assert!(body.len() <= 28 * 1024, "{filler:?}: {}", body.len());
        }
    }

    #[test]
    fn max_question_chars_per_dialect() {
        let all: Vec<_> = std::iter::once(Dialect::RocketChat)
            .chain(OTHERS)
            .map(|d| (d, d.max_question_chars()))
            .collect();
        assert_eq!(
            format!("{all:?}"),
            "[(RocketChat, 1800), (Mattermost, 1800), (Slack, 1800), (Discord, 668), (GoogleChat, 1800), (Teams, 729)]"
        );
    }

    #[test]
    fn one_character_over_max_question_chars_can_fail_where_the_limit_binds() {
        // Discord's limit binds well below 1800: a question of lines of one `@` just past it would not fit
        // with the adapter's reserve.
        let length = Dialect::Discord.max_question_chars() + 40;
        let mut text: String = "@\n".chars().cycle().take(length - 1).collect();
        text.push('x');
        let nickname = "@".repeat(Nickname::MAX_CHARS_LIMIT);
        let rendered = ChatMessage::render(&question(&text, Some(&nickname)), &tokyo()).expect("fits Rocket.Chat");
        let size = rendered
            .text_for(Dialect::Discord)
            .map_or(usize::MAX - ADAPTER_RESERVE, |t| t.chars().count());
        assert!(size + ADAPTER_RESERVE > 2000, "{size}");
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
