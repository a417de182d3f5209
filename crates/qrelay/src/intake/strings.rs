//! Everything the form says, in Japanese and English, in one place: the page's text, the notices its script
//! shows and a message for every error code. The template and the script hold no text of their own; the script
//! gets its part as JSON ([`Strings::script_json`]).
//!
//! Every language has a field per [`ErrorCode`] and [`ErrorMessages::get`] matches every code, so a code without
//! a translation does not compile; the tests below fail on an empty one.

use super::error::ErrorCode;
use super::lang::Lang;

/// Everything the form says, in one language.
#[derive(Debug)]
pub(crate) struct Strings {
    /// The language's own name, on the switch to it.
    pub(crate) language_name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) room_label: &'static str,
    pub(crate) text_label: &'static str,
    pub(crate) nickname_label: &'static str,
    pub(crate) send: &'static str,
    /// Shown by the script while a question is on its way.
    pub(crate) sending: &'static str,
    pub(crate) sent: &'static str,
    pub(crate) anonymous: &'static str,
    /// The page's `meta description`.
    pub(crate) description: &'static str,
    /// Said by the script when the text changed since a send whose answer never came: it goes as a new question.
    pub(crate) edited: &'static str,
    /// Announced to screen readers when the question nears the limit (`{n}` characters left).
    pub(crate) near_limit: &'static str,
    /// Announced to screen readers when the question is over the limit (`{n}` characters too many).
    pub(crate) over_limit: &'static str,
    /// Shown only without JavaScript: what a throttled send (API Gateway's own 429, which the page can't style)
    /// looks like and what to do.
    pub(crate) no_script: &'static str,
    /// The join screen's line under the QR code.
    pub(crate) join_hint: &'static str,
    /// Shown by the script when the server could not be reached at all.
    pub(crate) network: &'static str,
    pub(crate) errors: ErrorMessages,
}

/// What the student is told for each [`ErrorCode`]: one field per code.
#[derive(Debug)]
pub(crate) struct ErrorMessages {
    /// Also what the script shows for an answer without one of our codes (API Gateway's own 429 or 5xx).
    unavailable: &'static str,
    empty_text: &'static str,
    text_too_long: &'static str,
    nickname_too_long: &'static str,
    unknown_room: &'static str,
    invalid_submission_id: &'static str,
    malformed_body: &'static str,
    payload_too_large: &'static str,
    unsupported_media_type: &'static str,
    /// The form posts to a route that serves only GET: its page was opened at an address its relative links
    /// don't fit.
    method_not_allowed: &'static str,
    /// Also the text of the 404 page.
    not_found: &'static str,
    /// The instructor paused the room.
    room_paused: &'static str,
}

impl Strings {
    /// The strings of `lang`.
    pub(crate) fn of(lang: Lang) -> &'static Self {
        match lang {
            Lang::Ja => &JA,
            Lang::En => &EN,
        }
    }

    /// The strings the script needs, as a JSON object safe to embed in a `<script>` element:
    /// `{"sending", "sent", "network", "edited", "near_limit", "over_limit", "errors": {<code>: <message>, ...}}` with every [`ErrorCode`].
    pub(crate) fn script_json(&self) -> String {
        let errors: serde_json::Map<_, _> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str().to_owned(), self.errors.get(*code).into()))
            .collect();
        serde_json::json!({
            "sending": self.sending,
            "sent": self.sent,
            "network": self.network,
            "edited": self.edited,
            "near_limit": self.near_limit,
            "over_limit": self.over_limit,
            "errors": errors,
        })
        .to_string()
        .replace('<', "\\u003c")
    }
}

impl ErrorMessages {
    /// The message for `code`.
    pub(crate) fn get(&self, code: ErrorCode) -> &'static str {
        match code {
            ErrorCode::Unavailable => self.unavailable,
            ErrorCode::EmptyText => self.empty_text,
            ErrorCode::TextTooLong => self.text_too_long,
            ErrorCode::NicknameTooLong => self.nickname_too_long,
            ErrorCode::UnknownRoom => self.unknown_room,
            ErrorCode::InvalidSubmissionId => self.invalid_submission_id,
            ErrorCode::MalformedBody => self.malformed_body,
            ErrorCode::PayloadTooLarge => self.payload_too_large,
            ErrorCode::UnsupportedMediaType => self.unsupported_media_type,
            ErrorCode::MethodNotAllowed => self.method_not_allowed,
            ErrorCode::NotFound => self.not_found,
            ErrorCode::RoomPaused => self.room_paused,
        }
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
    sent: "送信しました。質問はチャットに表示されます（チャットが止まっている場合は、復旧しだい表示されます）。",
    anonymous: "匿名です：あなたを特定できる情報（名前・IPアドレス・端末の情報）は保存も記録もされず、講師には誰が質問したかわかりません。ニックネームを書いた場合は、質問と一緒に表示されます。",
    description: "講義中に匿名で質問を送るフォームです。",
    edited: "前回の送信の後に質問が変わったので、新しい質問として送信します。",
    near_limit: "残り{n}文字です。",
    over_limit: "{n}文字多すぎます。",
    no_script: "送信後に「Too Many Requests」と表示されたら、混み合っています。ブラウザの「戻る」で質問に戻り、少し待ってからもう一度送信してください。",
    join_hint: "スマートフォンのカメラでQRコードを読み取るか、このアドレスを開いてください",
    network: "サーバーから応答がありませんでした。入力した質問は残っています。もう一度送信してください。",
    errors: ErrorMessages {
        unavailable: "いま質問を受け付けられませんでした。入力した質問は残っています。少し待ってもう一度送信してください。",
        empty_text: "質問を入力してください。",
        text_too_long: "質問が長すぎます。短くしてください。",
        nickname_too_long: "ニックネームが長すぎます。",
        unknown_room: "このルームは存在しません。講師から共有されたリンクを確認してください。",
        invalid_submission_id: "ページを再読み込みしてから送信してください。",
        malformed_body: "送信内容を読み取れませんでした。ページを再読み込みしてください。",
        payload_too_large: "送信内容が大きすぎます。",
        unsupported_media_type: "送信内容を読み取れませんでした。ページを再読み込みしてください。",
        method_not_allowed: "このページからは質問を送信できません。講師から共有されたリンクを開き直してください。",
        not_found: "ページが見つかりません。講師から共有されたリンクを確認してください。",
        room_paused: "講師が質問の受付を一時停止しています。入力した文章はそのまま残っています。再開後にもう一度送信してください。",
    },
};

static EN: Strings = Strings {
    language_name: "English",
    title: "Ask a question anonymously",
    room_label: "Room",
    text_label: "Your question",
    nickname_label: "Nickname (optional)",
    send: "Send",
    sending: "Sending…",
    sent: "Sent. Your question will appear in the chat (if the chat is down, as soon as it is back).",
    anonymous: "Anonymous: nothing that identifies you (name, IP address, device) is stored or logged, and the instructor can't see who asked. A nickname, if you give one, is shown with your question.",
    description: "A form for asking questions anonymously during class.",
    edited: "Your question changed since the last send, so it goes as a new question.",
    near_limit: "{n} characters left.",
    over_limit: "{n} characters too many.",
    no_script: "If you see \"Too Many Requests\" after sending, the class is busy: go back to your question with the browser's Back button, wait a moment and send it again.",
    join_hint: "Scan the QR code with your phone's camera, or open this address",
    network: "The server did not answer. Your question is still here; please send it again.",
    errors: ErrorMessages {
        unavailable: "Your question could not be taken right now. It is still here; please wait a moment and send it again.",
        empty_text: "Please type your question.",
        text_too_long: "Your question is too long; please shorten it.",
        nickname_too_long: "The nickname is too long.",
        unknown_room: "This room does not exist. Please check the link your instructor shared.",
        invalid_submission_id: "Please reload the page and send again.",
        malformed_body: "What you sent could not be read. Please reload the page.",
        payload_too_large: "What you sent is too large.",
        unsupported_media_type: "What you sent could not be read. Please reload the page.",
        method_not_allowed: "This page can't send questions. Please open the link your instructor shared again.",
        not_found: "Page not found. Please check the link your instructor shared.",
        room_paused: "The instructor has paused questions for now. Your text is kept here: send it again once questions reopen.",
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_own_message_in_every_language() {
        for lang in Lang::ALL {
            let errors = &Strings::of(lang).errors;
            let fallback = errors.get(ErrorCode::Unavailable);
            for &code in ErrorCode::ALL {
                let message = errors.get(code);
                assert!(!message.trim().is_empty(), "{lang:?} has no message for {code:?}");
                if code != ErrorCode::Unavailable {
                    assert_ne!(
                        message, fallback,
                        "{lang:?} says for {code:?} what the script says for an unknown code"
                    );
                }
            }
        }
    }

    #[test]
    fn every_error_code_is_translated_for_the_script() {
        for lang in Lang::ALL {
            let s = Strings::of(lang);
            let json: serde_json::Value = serde_json::from_str(&s.script_json()).expect("JSON");
            for &code in ErrorCode::ALL {
                assert_eq!(
                    json["errors"][code.as_str()].as_str(),
                    Some(s.errors.get(code)),
                    "{lang:?}: {code:?}"
                );
            }
        }
    }

    #[test]
    fn the_languages_differ_in_every_string() {
        let (ja, en) = (Strings::of(Lang::Ja), Strings::of(Lang::En));
        let page = |s: &Strings| {
            [
                s.language_name,
                s.title,
                s.room_label,
                s.text_label,
                s.nickname_label,
                s.send,
                s.sending,
                s.sent,
                s.anonymous,
                s.network,
                s.description,
                s.edited,
                s.near_limit,
                s.over_limit,
                s.no_script,
                s.join_hint,
            ]
        };
        for (i, (ja, en)) in page(ja).into_iter().zip(page(en)).enumerate() {
            assert_ne!(ja, en, "page string {i} is not translated");
        }
        for &code in ErrorCode::ALL {
            assert_ne!(ja.errors.get(code), en.errors.get(code), "{code:?} is not translated");
        }
    }

    #[test]
    fn script_strings_cannot_end_the_script_element() {
        for lang in Lang::ALL {
            assert!(!Strings::of(lang).script_json().contains('<'), "{lang:?}");
        }
    }
}
