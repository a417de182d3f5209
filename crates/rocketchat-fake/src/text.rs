//! The small pieces of Rocket.Chat's behaviour that live in its text handling: mention detection, the message size
//! limit, Meteor-style random ids and JavaScript's timestamp format.
//!
//! Mention detection is what qrelay's neutralisation is tested against, so it follows the server's regex (Rocket.Chat
//! `MentionsParser.userMentionRegex`) rather than a guess: `(^|\s|>)@(name(@name)?(:[0-9a-zA-Z-_.]+)?)` with
//! `name = [0-9a-zA-Z-_.]+`, matched over the raw text including code blocks.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Message_MaxAllowedSize`'s default, in UTF-16 code units (JavaScript's `string.length`).
pub(crate) const MAX_MESSAGE_SIZE: usize = 5000;

pub(crate) fn exceeds_max_size(msg: &str) -> bool {
    msg.encode_utf16().count() > MAX_MESSAGE_SIZE
}

/// The mentions the server would find in `text`, without their `@`: usernames, `all` and `here`.
pub(crate) fn mentions(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    // The character before `rest`; `None` at the start of the text, which the regex's `^` accepts.
    let mut before: Option<char> = None;
    while let Some(at) = rest.find('@') {
        let previous = if at == 0 {
            before
        } else {
            rest[..at].chars().next_back()
        };
        let boundary = previous.is_none_or(|c| is_js_whitespace(c) || c == '>');
        let after = &rest[at + 1..];
        let name = if boundary { mention_at(after) } else { "" };
        if name.is_empty() {
            before = Some('@');
            rest = after;
        } else {
            found.push(name.to_owned());
            before = name.chars().next_back();
            rest = &after[name.len()..];
        }
    }
    found
}

/// Whether the server would refuse `text` from a user without the `mention-all` and `mention-here` permissions.
pub(crate) fn mentions_everyone(mentions: &[String]) -> bool {
    mentions.iter().any(|m| m == "all" || m == "here")
}

/// The mention starting right after an `@`: `name(@name)?(:[0-9a-zA-Z-_.]+)?`, or `""` if there is none.
fn mention_at(text: &str) -> &str {
    let mut end = name_len(text);
    if end == 0 {
        return "";
    }
    // A federated `user@server`, then an optional `:suffix`; each only counts if something follows its separator.
    for separator in ['@', ':'] {
        if text[end..].starts_with(separator) {
            let more = name_len(&text[end + 1..]);
            if more > 0 {
                end += 1 + more;
            }
        }
    }
    &text[..end]
}

fn name_len(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len())
}

/// JavaScript's `\s`: Unicode white space plus the byte-order mark, but not the zero-width space (U+200B) that
/// qrelay inserts after `@` precisely because it does not count.
fn is_js_whitespace(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{FEFF}'
}

/// JavaScript's `Date.prototype.toISOString`, e.g. `2024-05-01T12:34:56.789Z`, as Rocket.Chat serialises `ts`.
pub(crate) fn iso_timestamp(t: SystemTime) -> String {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let millis = since_epoch.subsec_millis();
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Random ids without a dependency: SplitMix64 seeded from the standard library's per-process random hash keys.
/// Ids only need to look like Rocket.Chat's and not collide within one test run, not to be unguessable.
pub(crate) struct IdGenerator(u64);

/// Meteor's `Random.id()` alphabet, which Rocket.Chat uses for room, message and integration ids.
const METEOR_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
const BASE64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl IdGenerator {
    pub(crate) fn new() -> Self {
        Self(RandomState::new().hash_one(SystemTime::now()))
    }

    /// A 17-character id like Meteor's `Random.id()`.
    pub(crate) fn meteor_id(&mut self) -> String {
        self.string(METEOR_ALPHABET, 17)
    }

    /// A webhook token that always contains `/` and `+`, which real tokens may contain and which a client must
    /// keep as they are in the URL.
    pub(crate) fn webhook_token(&mut self) -> String {
        format!(
            "{}/{}+{}",
            self.string(BASE64_ALPHABET, 16),
            self.string(BASE64_ALPHABET, 16),
            self.string(BASE64_ALPHABET, 8)
        )
    }

    fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[(self.next() % alphabet.len() as u64) as usize]))
            .collect()
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn mentions_are_found_where_the_server_regex_finds_them() {
        let cases: &[(&str, &[&str])] = &[
            ("@all", &["all"]),
            ("hello @here!", &["here"]),
            ("first line\n@all", &["all"]),
            (">@all quoted", &["all"]),
            ("`@alice` in code", &[]),
            ("```\n@alice\n```", &["alice"]),
            ("@alice @bob.smith, @carol-x", &["alice", "bob.smith", "carol-x"]),
            ("@alice@other.server", &["alice@other.server"]),
            ("@all.", &["all."]),
            ("@allison", &["allison"]),
            ("a@all.com", &[]),
            ("@ all", &[]),
            ("@\u{200B}all", &[]),
            ("\u{FF20}all", &[]),
            ("@@all", &[]),
            ("x\u{3000}@here", &["here"]),
        ];
        for (text, expected) in cases {
            assert_eq!(mentions(text), *expected, "mentions in {text:?}");
        }
    }

    #[test]
    fn only_all_and_here_mention_everyone() {
        assert!(
            mentions_everyone(&mentions("ping @here")),
            "@here mentions everyone online"
        );
        assert!(
            !mentions_everyone(&mentions("@allison @hereford")),
            "longer names are plain user mentions"
        );
    }

    #[test]
    fn size_limit_counts_utf16_code_units() {
        assert!(!exceeds_max_size(&"a".repeat(5000)), "5000 ASCII characters fit");
        assert!(exceeds_max_size(&"a".repeat(5001)), "5001 ASCII characters do not");
        assert!(
            exceeds_max_size(&format!("{}😀", "a".repeat(4999))),
            "5000 characters but 5001 units do not fit"
        );
    }

    #[test]
    fn timestamps_look_like_javascript_iso_strings() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_714_566_896_789, "2024-05-01T12:34:56.789Z"),
        ];
        for (millis, expected) in cases {
            assert_eq!(
                iso_timestamp(UNIX_EPOCH + Duration::from_millis(millis)),
                expected,
                "epoch ms {millis}"
            );
        }
    }

    #[test]
    fn generated_ids_have_the_meteor_shape_and_tokens_need_escaping_care() {
        let mut ids = IdGenerator::new();
        let id = ids.meteor_id();
        assert_eq!(id.len(), 17, "Meteor ids have 17 characters: {id}");
        assert!(
            id.bytes().all(|b| METEOR_ALPHABET.contains(&b)),
            "Meteor alphabet only: {id}"
        );
        assert_ne!(ids.meteor_id(), id, "consecutive ids differ");
        let token = ids.webhook_token();
        assert!(
            token.contains('/') && token.contains('+'),
            "webhook token has '/' and '+': {token}"
        );
    }
}
