//! The console page: one self-contained HTML page (no external assets), in Japanese or English, which signs the
//! instructor in against Cognito from the browser (deployed) and then drives the console API. It holds no data
//! and no secret: the app client's id is public by design, and everything it shows comes from the API.

use serde_json::json;

/// How the console page signs the instructor in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAuth {
    /// Against this deployment's Cognito user pool, from the browser (`USER_PASSWORD_AUTH`, then the first
    /// sign-in's new-password challenge or a TOTP code), sending the ID token as a bearer header: no cookies.
    Cognito { region: String, client_id: String },
    /// The local runner: loopback only, no sign-in.
    Local,
}

const TEMPLATE: &str = include_str!("page.html");

/// The page's words in one language: (key, text). Every language has every key (a test checks).
fn strings(lang: &str) -> &'static [(&'static str, &'static str)] {
    if lang == "ja" { JA } else { EN }
}

const EN: &[(&str, &str)] = &[
    ("title", "qrelay: instructor's console"),
    (
        "description",
        "Pause a room, review held questions and move dead letters back.",
    ),
    ("nav_label", "Language and session"),
    ("noscript", "The console needs JavaScript."),
    ("sign_in_title", "Sign in"),
    ("email", "E-mail"),
    ("password", "Password"),
    ("sign_in_button", "Sign in"),
    (
        "new_password_hint",
        "First sign-in: choose your own password (at least 12 characters, with upper and lower case, a digit and a symbol).",
    ),
    ("new_password", "New password"),
    ("new_password_button", "Set password and sign in"),
    ("totp", "Code from your authenticator app"),
    ("totp_button", "Confirm"),
    ("sign_out", "Sign out"),
    ("signing_in", "Signing in…"),
    ("signed_in", "Signed in."),
    ("sign_in_failed", "Could not sign in:"),
    ("sign_in_again", "Your session ended: please sign in again."),
    ("choose_password", "Choose a new password to finish your first sign-in."),
    ("enter_code", "Enter the 6-digit code from your authenticator app."),
    ("local", "Local console: this machine only, no sign-in."),
    ("failed", "The request failed:"),
    ("chat", "Chat: {kind}, {guarantee}"),
    ("rooms_title", "Rooms"),
    ("state_open", "Open"),
    ("state_review", "Review"),
    ("state_paused", "Paused"),
    ("flood", "flood breaker"),
    ("held_count", "{n} held"),
    ("switch_room", "Questions in {room}"),
    ("form_link", "Form"),
    ("join_link", "Join screen"),
    ("qr_link", "QR code"),
    ("held_title", "Held questions"),
    ("held_empty", "No question is waiting for you."),
    ("approve", "Approve"),
    ("reject", "Reject"),
    ("dead_title", "Dead-letter queue"),
    ("dead_none", "No question is in the dead-letter queue."),
    (
        "dead_some",
        "{n} question(s) could not reach the chat; the oldest was asked {oldest}.",
    ),
    ("dead_unknown", "The dead-letter queue could not be read."),
    ("dry_run", "Check what would move"),
    (
        "would_move",
        "{n} question(s) would move back to the chat. Is the chat working again?",
    ),
    ("move_back", "Move them back"),
    ("moved", "Moved {n} question(s) back; {remaining} remain."),
    (
        "local_tools",
        "Local tools: simulate a chat outage, retry now, the queue's depths",
    ),
    ("after_title", "After class"),
    ("export_room", "Room"),
    ("export_from", "From"),
    ("export_to", "To"),
    ("export_csv", "Download CSV"),
    ("export_markdown", "Download Markdown"),
    ("exported", "Downloaded {file}."),
    ("mail_digest", "Mail me these questions"),
    ("digest_to", "The digest goes to {to}."),
    (
        "digest_off",
        "No digest address is set (DigestEmail): use the downloads.",
    ),
];

const JA: &[(&str, &str)] = &[
    ("title", "qrelay 講師コンソール"),
    (
        "description",
        "ルームの一時停止、保留中の質問の確認、配信できなかった質問の再送。",
    ),
    ("nav_label", "言語とセッション"),
    ("noscript", "コンソールには JavaScript が必要です。"),
    ("sign_in_title", "サインイン"),
    ("email", "メールアドレス"),
    ("password", "パスワード"),
    ("sign_in_button", "サインイン"),
    (
        "new_password_hint",
        "初回サインインです。新しいパスワードを決めてください（12 文字以上、大文字・小文字・数字・記号を含む）。",
    ),
    ("new_password", "新しいパスワード"),
    ("new_password_button", "パスワードを設定してサインイン"),
    ("totp", "認証アプリのコード"),
    ("totp_button", "確認"),
    ("sign_out", "サインアウト"),
    ("signing_in", "サインインしています…"),
    ("signed_in", "サインインしました。"),
    ("sign_in_failed", "サインインできませんでした："),
    (
        "sign_in_again",
        "セッションが終了しました。もう一度サインインしてください。",
    ),
    (
        "choose_password",
        "初回サインインを完了するため、新しいパスワードを決めてください。",
    ),
    ("enter_code", "認証アプリに表示された 6 桁のコードを入力してください。"),
    (
        "local",
        "ローカルのコンソールです（このマシンからのみ、サインイン不要）。",
    ),
    ("failed", "リクエストに失敗しました："),
    ("chat", "チャット：{kind}（{guarantee}）"),
    ("rooms_title", "ルーム"),
    ("state_open", "受付中"),
    ("state_review", "確認してから投稿"),
    ("state_paused", "一時停止"),
    ("flood", "大量投稿の自動保留"),
    ("held_count", "保留 {n} 件"),
    ("switch_room", "{room} の質問"),
    ("form_link", "フォーム"),
    ("join_link", "参加用画面"),
    ("qr_link", "QR コード"),
    ("held_title", "保留中の質問"),
    ("held_empty", "確認待ちの質問はありません。"),
    ("approve", "投稿する"),
    ("reject", "投稿しない"),
    ("dead_title", "配信できなかった質問"),
    ("dead_none", "配信できなかった質問はありません。"),
    (
        "dead_some",
        "{n} 件の質問がチャットに届きませんでした。最も古いものは {oldest} の質問です。",
    ),
    ("dead_unknown", "配信できなかった質問の件数を読めませんでした。"),
    ("dry_run", "戻す前に確認する"),
    ("would_move", "{n} 件をチャットへ戻します。チャットは復旧していますか？"),
    ("move_back", "チャットへ戻す"),
    ("moved", "{n} 件を戻しました。残り {remaining} 件。"),
    (
        "local_tools",
        "ローカル用の道具：チャット停止の再現、すぐに再送、キューの状況",
    ),
    ("after_title", "授業のあとで"),
    ("export_room", "ルーム"),
    ("export_from", "開始日"),
    ("export_to", "終了日"),
    ("export_csv", "CSV をダウンロード"),
    ("export_markdown", "Markdown をダウンロード"),
    ("exported", "{file} をダウンロードしました。"),
    ("mail_digest", "この質問をメールで受け取る"),
    ("digest_to", "まとめは {to} に送られます。"),
    (
        "digest_off",
        "まとめの送り先（DigestEmail）が設定されていません。ダウンロードをお使いください。",
    ),
];

/// The console page in `lang` (`ja` or `en`), signing in as `auth` says.
pub fn console_page(lang: &str, auth: &PageAuth) -> String {
    let lang = if lang == "ja" { "ja" } else { "en" };
    let words: serde_json::Map<String, serde_json::Value> =
        strings(lang).iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let word = |key: &str| words.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let config = match auth {
        PageAuth::Cognito { region, client_id } => {
            json!({ "auth": "cognito", "region": region, "client_id": client_id, "strings": words })
        }
        PageAuth::Local => json!({ "auth": "local", "strings": words }),
    };
    // Inside <script>: no `<` can end the element early.
    let config = config.to_string().replace('<', "\\u003c");
    let (other, other_name) = if lang == "ja" {
        ("en", "English")
    } else {
        ("ja", "日本語")
    };
    TEMPLATE
        .replace("{{lang}}", lang)
        .replace("{{title}}", &escape(&word("title")))
        .replace("{{description}}", &escape(&word("description")))
        .replace("{{nav_label}}", &escape(&word("nav_label")))
        .replace("{{noscript}}", &escape(&word("noscript")))
        .replace("{{local_tools}}", &escape(&word("local_tools")))
        .replace("{{other_lang}}", other)
        .replace("{{other_language_name}}", other_name)
        .replace("{{config}}", &config)
}

use crate::web::escape_html as escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_word_and_nothing_empty() {
        fn keys(words: &'static [(&'static str, &'static str)]) -> Vec<&'static str> {
            words.iter().map(|(k, _)| *k).collect()
        }
        assert_eq!(keys(JA), keys(EN));
        for (key, text) in JA.iter().chain(EN) {
            assert!(!text.trim().is_empty(), "{key}");
        }
    }

    #[test]
    fn the_page_carries_its_sign_in_settings_and_no_placeholder() {
        let page = console_page(
            "ja",
            &PageAuth::Cognito {
                region: "ap-northeast-1".into(),
                client_id: "4example".into(),
            },
        );
        assert!(page.starts_with("<!doctype html>\n<html lang=\"ja\">"));
        assert!(page.contains(r#""auth":"cognito""#) && page.contains(r#""client_id":"4example""#));
        assert!(page.contains("講師コンソール") && page.contains("noindex"));
        assert!(!page.contains("{{"), "every placeholder is filled");
        let local = console_page("en", &PageAuth::Local);
        assert!(local.contains(r#""auth":"local""#) && !local.contains(r#""client_id":"#));
        // Every word the script looks up is in the strings it is given.
        let script = TEMPLATE.split("<script>").nth(1).expect("the script");
        // The element ids whose text the script sets from the id, dashes made underscores.
        for id in [
            "sign_in_title",
            "held_empty",
            "dead_title",
            "move_back",
            "sign_out",
            "dry_run",
            "totp_button",
        ] {
            assert!(EN.iter().any(|(k, _)| *k == id), "{id}");
        }
        // `t.key` where `t` stands alone (not the end of `document.`, say).
        let looked_up: Vec<&str> = script
            .match_indices("t.")
            .filter(|(at, _)| {
                script[..*at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            })
            .filter_map(|(at, _)| {
                let rest = &script[at + 2..];
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
                Some(&rest[..end])
            })
            .filter(|k| !k.is_empty())
            .collect();
        assert!(looked_up.len() > 20, "the script's words were found: {looked_up:?}");
        for key in looked_up {
            assert!(
                EN.iter().any(|(k, _)| *k == key),
                "the script uses t.{key}, which has no text"
            );
        }
    }
}
