//! The pages intake renders: the question form (one self-contained HTML page in `form.html`, with no external
//! scripts, fonts or styles, that posts with `fetch` and still works as a plain form without JavaScript) and a
//! small 404 page. What they say comes from `strings.rs`; this file only fills it in, escaped.

use super::error::ErrorCode;
use super::lang::Lang;
use super::strings::Strings;
use crate::domain::{Limits, Room};

/// What a rendered form shows besides its fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormState<'a> {
    /// Text to put back into the fields, so a student never loses what they typed.
    pub(crate) text: &'a str,
    pub(crate) nickname: &'a str,
    /// An error to explain, or none.
    pub(crate) error: Option<ErrorCode>,
    /// Whether to say the previous question was queued.
    pub(crate) sent: bool,
    /// Whether search engines may index the page (the site's root form); a room's pages are not for them.
    pub(crate) indexable: bool,
}

/// Links on a rendered page, relative to the URL it is served at, so the page works behind any API Gateway stage
/// or custom-domain prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLinks<'a> {
    /// `POST /questions`.
    pub(crate) action: &'a str,
    /// This room's form (for the language switch); empty for "this page".
    pub(crate) form: &'a str,
}

/// Renders the form page for `room`, with `limits` on what the student may type and `submission_id` for the
/// question it will send.
pub(crate) fn render_form(
    lang: Lang,
    room: &Room,
    links: &PageLinks<'_>,
    limits: Limits,
    submission_id: &str,
    state: &FormState<'_>,
) -> String {
    let s = Strings::of(lang);
    let (status_class, status) = match (state.error, state.sent) {
        (Some(code), _) => ("err", s.errors.get(code)),
        (None, true) => ("ok", s.sent),
        (None, false) => ("", ""),
    };
    let vars: [(&str, String); 23] = [
        ("robots", robots(state.indexable).into()),
        ("description", s.description.into()),
        ("favicon", FAVICON_DATA_URL.into()),
        ("no_script", s.no_script.into()),
        ("lang", lang.code().into()),
        ("other_lang", lang.other().code().into()),
        ("other_lang_name", Strings::of(lang.other()).language_name.into()),
        ("title", s.title.into()),
        ("room_label", s.room_label.into()),
        ("room", room.name().to_string()),
        ("action", links.action.into()),
        ("form", links.form.into()),
        ("submission_id", submission_id.into()),
        ("text_label", s.text_label.into()),
        ("text", state.text.into()),
        ("max_chars", limits.question_chars.to_string()),
        ("max_nickname", limits.nickname_chars.to_string()),
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
            html.push_str(&s.script_json());
        } else if let Some((_, value)) = vars.iter().find(|(k, _)| *k == key) {
            escape_into(&mut html, value);
        }
        rest = &rest[start + len + 2..];
    }
    html.push_str(rest);
    html
}

/// A small page for browsers asking for something that does not exist: a heading and the message in a main
/// landmark, not indexed.
pub(crate) fn render_not_found(lang: Lang) -> String {
    let s = Strings::of(lang);
    let message = s.errors.get(ErrorCode::NotFound);
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">",
        lang.code()
    );
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str("<meta name=\"robots\" content=\"noindex\">");
    html.push_str(&format!("<link rel=\"icon\" href=\"{FAVICON_DATA_URL}\"><title>404 · "));
    escape_into(&mut html, message);
    html.push_str("</title><style>body{font:17px/1.5 system-ui,sans-serif;margin:0;padding:1rem}</style></head>");
    html.push_str("<body><main><h1>404</h1><p>");
    escape_into(&mut html, message);
    html.push_str("</p></main></body></html>");
    html
}

/// The join screen of `room`, for the instructor to project at the start of class: the room's name, its QR code
/// (`qr_svg`, an `<svg>` element that scales) filling most of the screen and `short_link`, the form's address
/// without its scheme, in large type.
pub(crate) fn render_join(lang: Lang, room: &Room, qr_svg: &str, short_link: &str) -> String {
    let s = Strings::of(lang);
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">",
        lang.code()
    );
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str("<meta name=\"robots\" content=\"noindex\">");
    html.push_str(&format!("<link rel=\"icon\" href=\"{FAVICON_DATA_URL}\"><title>"));
    escape_into(&mut html, &format!("{} · {}", s.title, room.name()));
    html.push_str("</title><style>");
    html.push_str(JOIN_STYLE);
    html.push_str("</style></head><body><main><h1>");
    escape_into(&mut html, s.title);
    html.push_str(" · <span class=\"room\">");
    escape_into(&mut html, room.name().as_ref());
    html.push_str("</span></h1><div class=\"qr\" role=\"img\" aria-label=\"QR: ");
    escape_into(&mut html, short_link);
    html.push_str("\">");
    html.push_str(qr_svg);
    html.push_str("</div><p class=\"hint\">");
    escape_into(&mut html, s.join_hint);
    html.push_str("</p><p class=\"link\">");
    escape_into(&mut html, short_link);
    html.push_str("</p></main></body></html>");
    html
}

const JOIN_STYLE: &str = "*{box-sizing:border-box}html,body{height:100%;margin:0}\
body{background:#fff;color:#000;font-family:system-ui,\"Hiragino Sans\",\"Noto Sans JP\",sans-serif}\
main{height:100%;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:1vh 2vw}\
h1{font-size:4vh;margin:0 0 1vh;text-align:center}.room{font-family:ui-monospace,monospace}\
.qr svg{display:block;width:72vh;height:72vh;max-width:90vw;max-height:90vw}\
.hint{font-size:2.6vh;margin:1vh 0 0;text-align:center}\
.link{font-size:6vh;font-weight:700;margin:0;font-family:ui-monospace,monospace;word-break:break-all;text-align:center}";

/// `<meta name="robots">` for a page.
fn robots(indexable: bool) -> &'static str {
    if indexable { "index" } else { "noindex" }
}

/// The site's icon, a white question mark on the form's blue, for `<link rel="icon">` (base64, so that the page
/// holds no URL but its own).
pub(crate) const FAVICON_DATA_URL: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PHJlY3Qgd2lkdGg9IjE2IiBoZWlnaHQ9IjE2IiByeD0iMyIgZmlsbD0iIzBiNTdkMCIvPjxwYXRoIGQ9Ik01IDZhMyAzIDAgMSAxIDQgMi44VjEwSDdWNy41YTEuNSAxLjUgMCAxIDAtLjUtMS41eiBNNyAxMWgydjJIN3oiIGZpbGw9IiNmZmYiLz48L3N2Zz4=";

const TEMPLATE: &str = include_str!("form.html");

use crate::web::escape_html_into as escape_into;

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
            Limits {
                question_chars: 1000,
                nickname_chars: 40,
            },
            "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f",
            state,
        )
    }

    #[test]
    fn the_form_has_no_external_url() {
        for lang in Lang::ALL {
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
                error: Some(ErrorCode::Unavailable),
                ..Default::default()
            },
        );
        assert!(
            html.contains("&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>"),
            "text kept, escaped"
        );
        assert!(html.contains("It is still here"), "the error is explained");
    }

    /// The script reads its strings as `t.<key>` and `t.errors.<code>`; a key it reads that the JSON lacks would
    /// show the student nothing.
    #[test]
    fn every_string_the_script_reads_is_given_to_it() {
        let script = &TEMPLATE[TEMPLATE.find("<script>").expect("a script")..];
        let mut read = Vec::new();
        for (at, _) in script.match_indices("t.") {
            let before = script[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.')) {
                continue;
            }
            let path: String = script[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
                .collect();
            read.push(path);
        }
        assert!(
            read.iter().any(|p| p == "sending") && read.iter().any(|p| p == "errors.empty_text"),
            "the scan finds the script's strings: {read:?}"
        );
        for lang in Lang::ALL {
            let json: serde_json::Value = serde_json::from_str(&Strings::of(lang).script_json()).expect("JSON");
            for path in &read {
                let value = path.split('.').fold(&json, |value, key| &value[key]);
                // `t.errors[code]` scans as `errors`, an object; every other read must be a string.
                assert!(
                    value.is_string() || (path == "errors" && value.is_object()),
                    "{lang:?}: the script reads t.{path}, which is {value}"
                );
            }
        }
    }
}
