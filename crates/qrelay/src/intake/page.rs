//! The question form: one self-contained HTML page (no external scripts, fonts or styles), in Japanese or
//! English, that posts with `fetch` and still works as a plain form without JavaScript.

use http::HeaderMap;

use crate::domain::Room;

/// The languages the form speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// `?lang=` wins; otherwise the first of Japanese or English in `Accept-Language` by preference; English when
    /// neither is listed.
    pub fn negotiate(query_lang: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(lang) = query_lang.and_then(Self::from_tag) {
            return lang;
        }
        let accept = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut best: Option<(f32, Self)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_tag(tag) {
                if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Self::En, |(_, lang)| lang)
    }

    /// `ja`, `ja-JP`, `en-US`, ... (case-insensitive).
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match primary.as_str() {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    fn strings(self) -> &'static Strings {
        match self {
            Self::Ja => &JA,
            Self::En => &EN,
        }
    }
}

/// What a rendered form shows besides its fields.
#[derive(Debug, Clone, Default)]
pub struct FormState<'a> {
    /// Text to put back into the fields, so a student never loses what they typed.
    pub text: &'a str,
    pub nickname: &'a str,
    /// An error code to show (see `IntakeError::code`), or none.
    pub error: Option<&'static str>,
    /// Whether to say the previous question was queued.
    pub sent: bool,
}

/// Links on a rendered page, relative to the URL it is served at, so the page works behind any API Gateway stage
/// or custom-domain prefix.
#[derive(Debug, Clone, Copy)]
pub struct PageLinks<'a> {
    /// `POST /questions`.
    pub action: &'a str,
    /// This room's form (for the language switch); empty for "this page".
    pub form: &'a str,
}

/// Renders the form page for `room`.
pub fn render_form(
    lang: Lang,
    room: &Room,
    links: &PageLinks<'_>,
    max_chars: usize,
    max_nickname: usize,
    submission_id: &str,
    state: &FormState<'_>,
) -> String {
    let s = lang.strings();
    let (status_class, status) = match (state.error, state.sent) {
        (Some(code), _) => ("err", s.message(code)),
        (None, true) => ("ok", s.sent),
        (None, false) => ("", ""),
    };
    let vars: [(&str, String); 19] = [
        ("lang", lang.code().into()),
        ("other_lang", lang.other().code().into()),
        ("other_lang_name", lang.other().strings().language_name.into()),
        ("title", s.title.into()),
        ("room_label", s.room_label.into()),
        ("room", room.name().to_string()),
        ("action", links.action.into()),
        ("form", links.form.into()),
        ("submission_id", submission_id.into()),
        ("text_label", s.text_label.into()),
        ("text", state.text.into()),
        ("max_chars", max_chars.to_string()),
        ("max_nickname", max_nickname.to_string()),
        ("nickname_label", s.nickname_label.into()),
        ("nickname", state.nickname.into()),
        ("send", s.send.into()),
        ("status_class", status_class.into()),
        ("status", status.into()),
        ("anonymous", s.anonymous.into()),
    ];
    let mut html = String::with_capacity(TEMPLATE.len() + 2048);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        html.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else { break };
        let key = &rest[start + 2..start + len];
        if key == "strings_json" {
            html.push_str(&s.to_json());
        } else if let Some((_, value)) = vars.iter().find(|(k, _)| *k == key) {
            escape_into(&mut html, value);
        }
        rest = &rest[start + len + 2..];
    }
    html.push_str(rest);
    html
}

/// A small page for browsers asking for something that does not exist.
pub fn render_not_found(lang: Lang) -> String {
    let s = lang.strings();
    let mut html = format!("<!doctype html><html lang=\"{}\"><meta charset=\"utf-8\">", lang.code());
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>404</title><p>");
    escape_into(&mut html, s.not_found);
    html.push_str("</p></html>");
    html
}

const TEMPLATE: &str = include_str!("form.html");

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Everything the page says, in one language.
#[derive(Debug)]
struct Strings {
    language_name: &'static str,
    title: &'static str,
    room_label: &'static str,
    text_label: &'static str,
    nickname_label: &'static str,
    send: &'static str,
    sending: &'static str,
    sent: &'static str,
    anonymous: &'static str,
    network: &'static str,
    not_found: &'static str,
    /// Error messages by `IntakeError::code`.
    errors: &'static [(&'static str, &'static str)],
}

impl Strings {
    fn message(&self, code: &str) -> &'static str {
        self.errors
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(self.errors[0].1, |(_, m)| m)
    }

    /// The strings the script needs, as a JSON object safe to embed in a `<script>` element.
    fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for (key, value) in [
            ("sending", self.sending),
            ("sent", self.sent),
            ("network", self.network),
        ] {
            map.insert(key.into(), value.into());
        }
        for (code, message) in self.errors {
            map.insert((*code).into(), (*message).into());
        }
        serde_json::Value::Object(map).to_string().replace('<', "\\u003c")
    }
}

static JA: Strings = Strings {
    language_name: "日本語",
    title: "匿名で質問する",
    room_label: "ルーム",
    text_label: "質問",
    nickname_label: "ニックネーム（任意）",
    send: "送信",
    sending: "送信中…",
    sent: "送信しました。まもなくチャットに表示されます。",
    anonymous: "匿名です：名前・IPアドレス・端末の情報はチャットに送られません。",
    network: "サーバーに接続できませんでした。入力した質問は残っています。もう一度送信してください。",
    not_found: "ページが見つかりません。講師から共有されたリンクを確認してください。",
    errors: &[
        (
            "unavailable",
            "いま質問を受け付けられませんでした。入力した質問は残っています。少し待ってもう一度送信してください。",
        ),
        ("empty_text", "質問を入力してください。"),
        ("text_too_long", "質問が長すぎます。短くしてください。"),
        ("nickname_too_long", "ニックネームが長すぎます。"),
        (
            "unknown_room",
            "このルームは存在しません。講師から共有されたリンクを確認してください。",
        ),
        ("payload_too_large", "送信内容が大きすぎます。"),
        (
            "malformed_body",
            "送信内容を読み取れませんでした。ページを再読み込みしてください。",
        ),
        ("invalid_submission_id", "ページを再読み込みしてから送信してください。"),
        (
            "unsupported_media_type",
            "送信内容を読み取れませんでした。ページを再読み込みしてください。",
        ),
    ],
};

static EN: Strings = Strings {
    language_name: "English",
    title: "Ask a question anonymously",
    room_label: "Room",
    text_label: "Your question",
    nickname_label: "Nickname (optional)",
    send: "Send",
    sending: "Sending…",
    sent: "Sent! Your question will appear in the chat shortly.",
    anonymous: "Anonymous: your name, IP address and device are never sent to the chat.",
    network: "Could not reach the server. Your question is still here; please send it again.",
    not_found: "Page not found. Please check the link your instructor shared.",
    errors: &[
        (
            "unavailable",
            "Your question could not be taken right now. It is still here; please wait a moment and send it again.",
        ),
        ("empty_text", "Please type your question."),
        ("text_too_long", "Your question is too long; please shorten it."),
        ("nickname_too_long", "The nickname is too long."),
        (
            "unknown_room",
            "This room does not exist. Please check the link your instructor shared.",
        ),
        ("payload_too_large", "What you sent is too large."),
        (
            "malformed_body",
            "What you sent could not be read. Please reload the page.",
        ),
        ("invalid_submission_id", "Please reload the page and send again."),
        (
            "unsupported_media_type",
            "What you sent could not be read. Please reload the page.",
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Rooms;

    fn page(lang: Lang, state: &FormState<'_>) -> String {
        let rooms = Rooms::parse("rust-101").expect("rooms");
        render_form(
            lang,
            rooms.default_room(),
            &PageLinks {
                action: "../questions",
                form: "",
            },
            1000,
            40,
            "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f",
            state,
        )
    }

    #[test]
    fn the_form_has_no_external_url() {
        for lang in [Lang::Ja, Lang::En] {
            let html = page(lang, &FormState::default());
            for needle in ["http:", "https:", "//cdn", "src=\"//", "href=\"//", "@import", "url("] {
                assert!(!html.contains(needle), "{lang:?} page contains {needle:?}");
            }
            assert!(!html.contains("{{"), "{lang:?} page has an unfilled placeholder");
        }
    }

    #[test]
    fn the_form_speaks_japanese_and_english() {
        let ja = page(Lang::Ja, &FormState::default());
        assert!(ja.contains("<html lang=\"ja\">"), "ja page declares its language");
        for s in [
            "匿名で質問する",
            "送信",
            "ニックネーム（任意）",
            "IPアドレス",
            "English",
        ] {
            assert!(ja.contains(s), "ja page lacks {s:?}");
        }
        let en = page(Lang::En, &FormState::default());
        assert!(en.contains("<html lang=\"en\">"), "en page declares its language");
        for s in [
            "Ask a question anonymously",
            "Send",
            "Nickname (optional)",
            "IP address",
            "日本語",
        ] {
            assert!(en.contains(s), "en page lacks {s:?}");
        }
    }

    #[test]
    fn kept_text_is_escaped_and_shown() {
        let html = page(
            Lang::En,
            &FormState {
                text: "</textarea><script>x</script>",
                error: Some("unavailable"),
                ..Default::default()
            },
        );
        assert!(
            html.contains("&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>"),
            "text kept, escaped"
        );
        assert!(html.contains("It is still here"), "the error is explained");
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        let cases = [
            (None, "ja-JP,ja;q=0.9,en;q=0.8", Lang::Ja),
            (None, "en-US,en;q=0.9,ja;q=0.8", Lang::En),
            (None, "fr-FR, ja;q=0.5, en;q=0.4", Lang::Ja),
            (None, "de", Lang::En),
            (None, "", Lang::En),
            (None, "ja;q=0, en", Lang::En),
            (Some("ja"), "en", Lang::Ja),
            (Some("xx"), "ja", Lang::Ja),
        ];
        for (query, accept, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::ACCEPT_LANGUAGE, accept.parse().expect("header"));
            assert_eq!(
                Lang::negotiate(query, &headers),
                expected,
                "query {query:?}, Accept-Language {accept:?}"
            );
        }
    }
}
