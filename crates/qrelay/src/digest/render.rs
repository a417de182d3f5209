//! The digest mail (plain text and HTML, ja/en) and the exports (CSV, Markdown).

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{Digest, Entry, RoomDigest, SignalsRead};
use crate::domain::RoomName;

/// The digest's language (`DIGEST_LANGUAGE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Language {
    #[default]
    Ja,
    En,
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ja" => Ok(Self::Ja),
            "en" => Ok(Self::En),
            other => Err(format!("{other:?} is not a digest language: use ja or en")),
        }
    }
}

/// The words of the digest, in one language.
struct Words {
    subject: fn(questions: usize, unanswered: usize, what: &str) -> String,
    heading: fn(days: &str, tz: &str) -> String,
    room: fn(room: &str, questions: usize, unanswered: usize) -> String,
    unanswered: &'static str,
    answered: &'static str,
    none: &'static str,
    votes: &'static str,
    not_supported: &'static str,
    partly: fn(missing: usize) -> String,
    footer: &'static str,
}

const EN: Words = Words {
    subject: |q, u, what| format!("qrelay: {}, {u} unanswered ({what})", questions(q)),
    heading: |days, tz| format!("Questions asked on {days} ({tz})"),
    room: |room, q, u| format!("{room}: {}, {u} unanswered", questions(q)),
    unanswered: "Unanswered (most votes first)",
    answered: "Answered",
    none: "No questions.",
    votes: "votes",
    not_supported: "This chat can't report reactions: no votes, and every question is listed as unanswered.",
    partly: |n| {
        format!(
            "The chat could not be read for {}: they show no votes and are listed as unanswered.",
            questions(n)
        )
    },
    footer: "Votes are 👍 reactions; a question counts as answered with a ✅ reaction or a reply in its thread. \
             Sent by qrelay: the questions are anonymous, and nothing here says who asked.",
};

const JA: Words = Words {
    subject: |q, u, what| format!("qrelay: 質問 {q} 件、未回答 {u} 件（{what}）"),
    heading: |days, tz| format!("{days} の質問（{tz}）"),
    room: |room, q, u| format!("{room}: 質問 {q} 件、未回答 {u} 件"),
    unanswered: "未回答（票の多い順）",
    answered: "回答済み",
    none: "質問はありません。",
    votes: "票",
    not_supported: "このチャットからはリアクションを読めません。票はなく、すべて未回答として載せています。",
    partly: |n| format!("{n} 件はチャットから読めませんでした。票なし・未回答として載せています。"),
    footer: "票は 👍 リアクションの数です。✅ リアクションかスレッドへの返信があれば回答済みとします。\
             qrelay より送信：質問は匿名で、誰が質問したかはどこにも記録されていません。",
};

/// "1 question", "2 questions".
fn questions(n: usize) -> String {
    if n == 1 {
        "1 question".to_owned()
    } else {
        format!("{n} questions")
    }
}

fn words(language: Language) -> &'static Words {
    match language {
        Language::Ja => &JA,
        Language::En => &EN,
    }
}

fn days_label(digest: &Digest) -> String {
    let days = &digest.days;
    if days.first == days.last {
        days.first.to_string()
    } else {
        format!("{} – {}", days.first, days.last)
    }
}

/// `09:30`, or `2026-12-05 09:30` when the digest spans several days.
fn when(at: Timestamp, time_zone: &TimeZone, with_date: bool) -> String {
    let zoned = at.to_zoned(time_zone.clone());
    if with_date {
        zoned.strftime("%Y-%m-%d %H:%M").to_string()
    } else {
        zoned.strftime("%H:%M").to_string()
    }
}

/// The subject, the plain-text body and the HTML body of a digest mail.
pub(super) fn mail(digest: &Digest, language: Language) -> (String, String, String) {
    let w = words(language);
    let questions = digest.questions();
    let unanswered: usize = digest.rooms.iter().map(RoomDigest::unanswered).sum();
    let days = days_label(digest);
    let rooms: Vec<&str> = digest.rooms.iter().map(|r| r.room.as_ref()).collect();
    let subject = (w.subject)(questions, unanswered, &format!("{}, {days}", rooms.join(", ")));
    let tz = digest.days.time_zone.iana_name().unwrap_or("UTC");
    let with_date = digest.days.first != digest.days.last;

    let mut text = format!("{}\n", (w.heading)(&days, tz));
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em\"><h1 style=\"font-size:1.3em\">{}</h1>",
        match language {
            Language::Ja => "ja",
            Language::En => "en",
        },
        escape(&subject),
        escape(&(w.heading)(&days, tz)),
    );
    for room in &digest.rooms {
        let heading = (w.room)(room.room.as_ref(), room.entries.len(), room.unanswered());
        let _ = write!(text, "\n== {heading} ==\n");
        let _ = write!(html, "<h2 style=\"font-size:1.1em\">{}</h2>", escape(&heading));
        let note = match room.signals {
            SignalsRead::All => None,
            SignalsRead::NotSupported => Some(w.not_supported.to_owned()),
            SignalsRead::Partly { missing } => Some((w.partly)(missing)),
        };
        if let Some(note) = note.filter(|_| !room.entries.is_empty()) {
            let _ = writeln!(text, "({note})");
            let _ = write!(html, "<p><em>{}</em></p>", escape(&note));
        }
        if room.entries.is_empty() {
            let _ = writeln!(text, "{}", w.none);
            let _ = write!(html, "<p>{}</p>", escape(w.none));
            continue;
        }
        let (open, done): (Vec<&Entry>, Vec<&Entry>) = room.entries.iter().partition(|e| !e.answered());
        for (title, entries) in [(w.unanswered, open), (w.answered, done)] {
            if entries.is_empty() {
                continue;
            }
            let _ = write!(text, "\n{title}\n");
            let _ = write!(html, "<h3 style=\"font-size:1em\">{}</h3><ol>", escape(title));
            for entry in entries {
                let q = &entry.archived.question;
                let mut meta = when(q.submitted_at, &digest.days.time_zone, with_date);
                if let Some(nickname) = &q.nickname {
                    let _ = write!(meta, " · {nickname}");
                }
                if let Some(signals) = entry.signals {
                    let _ = write!(meta, " · 👍 {} {}", signals.votes, w.votes);
                }
                let body = q.text.replace('\n', "\n    ");
                let _ = write!(text, "- [{meta}]\n    {body}\n");
                let _ = write!(
                    html,
                    "<li><div style=\"color:#555;font-size:.9em\">{}</div><div style=\"white-space:pre-wrap\">{}</div></li>",
                    escape(&meta),
                    escape(&q.text)
                );
            }
            html.push_str("</ol>");
        }
    }
    let _ = write!(text, "\n--\n{}\n", w.footer);
    let _ = write!(
        html,
        "<hr><p style=\"color:#555;font-size:.85em\">{}</p></body></html>",
        escape(w.footer)
    );
    (subject, text, html)
}

use crate::web::escape_html as escape;

/// What the console exports: `csv` (one row per question, for a spreadsheet) or `markdown` (for notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Markdown,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Self::Csv),
            "markdown" | "md" => Ok(Self::Markdown),
            other => Err(format!("{other:?} is not an export format: use csv or markdown")),
        }
    }
}

/// The CSV export's columns, in order.
pub const CSV_HEADER: [&str; 6] = ["room", "id", "submitted_at", "delivered_at", "nickname", "text"];

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Markdown => "md",
        }
    }

    /// A room's questions in submission order, as the archive keeps them (the votes and answers are the digest's:
    /// the console that exports does not read the chat). Times are RFC 3339 in the course's time zone.
    pub fn render(self, room: &RoomName, entries: &[Entry], time_zone: &TimeZone) -> String {
        match self {
            Self::Csv => csv(entries, time_zone),
            Self::Markdown => markdown(room, entries, time_zone),
        }
    }
}

fn rfc3339(at: Timestamp, time_zone: &TimeZone) -> String {
    at.to_zoned(time_zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn csv(entries: &[Entry], time_zone: &TimeZone) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    // Writing to memory can't fail: the results are ignored only for the header and rows' I/O.
    let _ = writer.write_record(CSV_HEADER);
    for entry in entries {
        let q = &entry.archived.question;
        let _ = writer.write_record([
            q.room.as_str(),
            &q.id.to_string(),
            &rfc3339(q.submitted_at, time_zone),
            &rfc3339(entry.archived.delivered_at, time_zone),
            q.nickname.as_deref().unwrap_or_default(),
            &defuse_formula(&q.text),
        ]);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR first) gets a leading apostrophe:
/// an anonymous text must not become a formula on the instructor's machine (OWASP's CSV injection advice).
fn defuse_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn markdown(room: &RoomName, entries: &[Entry], time_zone: &TimeZone) -> String {
    let mut out = format!("# {}\n\n", markdown_escape(room.as_ref()));
    if entries.is_empty() {
        out.push_str("No questions.\n");
    }
    for entry in entries {
        let q = &entry.archived.question;
        let _ = write!(out, "- **{}**", rfc3339(q.submitted_at, time_zone));
        if let Some(nickname) = &q.nickname {
            let _ = write!(out, " · {}", markdown_escape(nickname));
        }
        out.push('\n');
        for line in q.text.lines() {
            let _ = writeln!(out, "  > {}", markdown_escape(line));
        }
    }
    out
}

/// The text as Markdown shows it literally: no headings, links, emphasis or HTML from a student's question.
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
