//! The digest's order, words and days, and the exports' formats, on the in-memory store with a chat that reports
//! scripted reactions. The DynamoDB archive, SES and Rocket.Chat's reactions are covered by the integration tests.

use std::collections::HashMap;

use async_trait::async_trait;

use super::*;
use crate::chat::{ChatError, ChatMessage, Delivery};
use crate::control::MemoryStore;
use crate::domain::{Question, QuestionId, QuestionText};

fn tokyo() -> TimeZone {
    TimeZone::get("Asia/Tokyo").expect("zone")
}

fn rooms() -> Rooms {
    Rooms::parse("rust-101,web-201,general").expect("rooms")
}

fn question(room: &str, text: &str, at: &str) -> Question {
    Question {
        id: QuestionId::new_random(),
        room: RoomName::parse(room).expect("room"),
        text: QuestionText::parse(text, 1000).expect("text"),
        nickname: None,
        submitted_at: at.parse().expect("time"),
    }
}

/// A chat that answers each question's reactions from a script; ids it does not know are "not there".
#[derive(Default)]
struct Reactions {
    by_id: HashMap<QuestionId, Result<Signals, ()>>,
}

#[async_trait]
impl ChatPoster for Reactions {
    async fn post(&self, _: QuestionId, _: &str, _: &ChatMessage) -> Result<Delivery, ChatError> {
        unreachable!("the digest never posts")
    }

    async fn signals(&self, id: QuestionId, _channel: &str) -> Result<Option<Signals>, ChatError> {
        match self.by_id.get(&id) {
            Some(Ok(signals)) => Ok(Some(*signals)),
            Some(Err(())) => Err(ChatError::Unavailable("down".into())),
            None => Ok(None),
        }
    }
}

async fn archive(store: &MemoryStore, questions: &[&Question]) {
    let now: Timestamp = "2026-12-05T03:00:00Z".parse().expect("time");
    for q in questions {
        store
            .archive(q, now, "2027-01-04T03:00:00Z".parse().expect("time"))
            .await
            .expect("archive");
    }
}

fn day(date: &str) -> Days {
    Days::parse(date, date, &tokyo()).expect("days")
}

fn now() -> Timestamp {
    "2026-12-05T10:00:00Z".parse().expect("time")
}

#[tokio::test]
async fn unanswered_come_first_by_votes_then_the_answered_ones() {
    let store = Arc::new(MemoryStore::new());
    // 2026-12-05 in Tokyo runs from 2026-12-04T15:00Z to 2026-12-05T15:00Z.
    let a = question("rust-101", "few votes, unanswered", "2026-12-05T01:00:00Z");
    let b = question("rust-101", "many votes, unanswered", "2026-12-05T01:05:00Z");
    let c = question("rust-101", "answered, most votes", "2026-12-05T01:10:00Z");
    let d = question("rust-101", "many votes too, asked later", "2026-12-05T01:20:00Z");
    let e = question("rust-101", "the chat did not answer", "2026-12-05T01:30:00Z");
    let yesterday = question("rust-101", "yesterday (Tokyo)", "2026-12-04T14:59:59Z");
    let other_room = question("web-201", "another room", "2026-12-05T02:00:00Z");
    archive(&store, &[&a, &b, &c, &d, &e, &yesterday, &other_room]).await;
    let mut chat = Reactions::default();
    chat.by_id.insert(
        a.id,
        Ok(Signals {
            votes: 1,
            answered: false,
        }),
    );
    chat.by_id.insert(
        b.id,
        Ok(Signals {
            votes: 5,
            answered: false,
        }),
    );
    chat.by_id.insert(
        c.id,
        Ok(Signals {
            votes: 9,
            answered: true,
        }),
    );
    chat.by_id.insert(
        d.id,
        Ok(Signals {
            votes: 5,
            answered: false,
        }),
    );
    chat.by_id.insert(e.id, Err(()));
    let digester = Digester::new(rooms(), store, Some(Arc::new(chat)));
    let room = RoomName::parse("rust-101").expect("room");

    let digest = digester
        .digest(std::slice::from_ref(&room), &day("2026-12-05"), now())
        .await
        .expect("digest");
    let order: Vec<&str> = digest.rooms[0]
        .entries
        .iter()
        .map(|e| e.archived.question.text.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "many votes, unanswered",
            "many votes too, asked later",
            "few votes, unanswered",
            "the chat did not answer",
            "answered, most votes"
        ]
    );
    assert_eq!(digest.rooms[0].unanswered(), 4);
    assert_eq!(digest.rooms[0].signals, SignalsRead::Partly { missing: 1 });

    let (subject, text, html) = render::mail(&digest, Language::En);
    assert_eq!(subject, "qrelay: 5 questions, 4 unanswered (rust-101, 2026-12-05)");
    assert!(text.contains("Questions asked on 2026-12-05 (Asia/Tokyo)"), "{text}");
    assert!(
        text.contains("- [10:05 · 👍 5 votes]\n    many votes, unanswered"),
        "{text}"
    );
    assert!(text.contains("could not be read for 1 question:"), "{text}");
    let unanswered_at = text.find("Unanswered").expect("unanswered section");
    let answered_at = text.find("\nAnswered\n").expect("answered section");
    assert!(unanswered_at < answered_at);
    assert!(!text.contains("yesterday") && !text.contains("another room"), "{text}");
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("many votes, unanswered"),
        "{html}"
    );

    let (subject, text, _) = render::mail(&digest, Language::Ja);
    assert_eq!(subject, "qrelay: 質問 5 件、未回答 4 件（rust-101, 2026-12-05）");
    assert!(
        text.contains("未回答（票の多い順）") && text.contains("回答済み"),
        "{text}"
    );
}

#[tokio::test]
async fn a_chat_that_cant_be_asked_gives_a_digest_in_the_order_asked_and_says_so() {
    let store = Arc::new(MemoryStore::new());
    let first = question("rust-101", "first", "2026-12-05T01:00:00Z");
    let second = question("rust-101", "second", "2026-12-05T02:00:00Z");
    archive(&store, &[&second, &first]).await;
    let digester = Digester::new(rooms(), store, None);
    let room = RoomName::parse("rust-101").expect("room");
    let digest = digester
        .digest(&[room], &day("2026-12-05"), now())
        .await
        .expect("digest");
    let texts: Vec<&str> = digest.rooms[0]
        .entries
        .iter()
        .map(|e| e.archived.question.text.as_str())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert_eq!(digest.rooms[0].signals, SignalsRead::NotSupported);
    let (_, text, _) = render::mail(&digest, Language::En);
    assert!(text.contains("can't report reactions"), "{text}");
}

#[test]
fn the_html_mail_escapes_what_a_student_typed() {
    let q = question("rust-101", "<script>alert(1)</script> & <b>", "2026-12-05T01:00:00Z");
    let digest = Digest {
        days: day("2026-12-05"),
        rooms: vec![RoomDigest {
            room: q.room.clone(),
            entries: vec![Entry {
                archived: Archived {
                    question: (&q).into(),
                    delivered_at: now(),
                    expires_at: now(),
                },
                signals: None,
            }],
            signals: SignalsRead::NotSupported,
        }],
    };
    let (_, _, html) = render::mail(&digest, Language::En);
    assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;"),
        "{html}"
    );
}

#[test]
fn days_are_dates_in_order_within_a_year() {
    let tz = tokyo();
    let days = Days::parse("2026-12-01", "2026-12-05", &tz).expect("ok");
    let (from, to) = days.bounds().expect("bounds");
    assert_eq!(from.to_string(), "2026-11-30T15:00:00Z");
    assert_eq!(to.to_string(), "2026-12-05T15:00:00Z");
    for (first, last, needle) in [
        ("2026-12-05", "2026-12-01", "after"),
        ("yesterday", "2026-12-01", "YYYY-MM-DD"),
        ("2026-02-30", "2026-03-01", "YYYY-MM-DD"),
        ("2025-01-01", "2026-12-31", "at most 366 days"),
    ] {
        let err = Days::parse(first, last, &tz).expect_err("refused");
        assert!(err.contains(needle), "{first}..{last}: {err}");
    }
}

fn entries(texts: &[(&str, Option<&str>, Option<Signals>)]) -> Vec<Entry> {
    texts
        .iter()
        .enumerate()
        .map(|(i, (text, nickname, signals))| {
            let mut q = question("rust-101", text, "2026-12-05T01:00:00Z");
            q.nickname = nickname.map(|n| crate::domain::Nickname::parse(n, 40).expect("nickname"));
            q.submitted_at += jiff::SignedDuration::from_secs(60 * i as i64);
            Entry {
                archived: Archived {
                    question: (&q).into(),
                    delivered_at: q.submitted_at + jiff::SignedDuration::from_secs(2),
                    expires_at: now(),
                },
                signals: *signals,
            }
        })
        .collect()
}

#[test]
fn the_csv_export_reads_back_as_the_same_rows() {
    let rows = entries(&[
        (
            "plain",
            None,
            Some(Signals {
                votes: 3,
                answered: true,
            }),
        ),
        ("a \"quoted\", comma\nand a second line", Some("さくら"), None),
        (
            "=HYPERLINK(\"http://x\")",
            None,
            Some(Signals {
                votes: 0,
                answered: false,
            }),
        ),
    ]);
    let room = RoomName::parse("rust-101").expect("room");
    let csv = ExportFormat::Csv.render(&room, &rows, &tokyo());
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>(), CSV_HEADER);
    let read: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0][0], "rust-101");
    assert_eq!(read[0][1], rows[0].archived.question.id.to_string());
    assert_eq!(read[0][2], "2026-12-05T10:00:00+09:00");
    assert_eq!(read[0][3], "2026-12-05T10:00:02+09:00");
    assert_eq!(read[0][5], "plain");
    assert_eq!(read[0][4], "", "no nickname");
    assert_eq!(read[1][4], "さくら");
    assert_eq!(read[1][5], "a \"quoted\", comma\nand a second line");
    assert!(read.iter().all(|row| row.len() == CSV_HEADER.len()));
    // A formula is kept as text for a spreadsheet.
    assert_eq!(read[2][5], "'=HYPERLINK(\"http://x\")");
}

#[test]
fn the_markdown_export_shows_a_students_markup_literally() {
    let rows = entries(&[(
        "# not a heading [link](http://x) **bold**\nsecond line",
        Some("_nick_"),
        Some(Signals {
            votes: 2,
            answered: true,
        }),
    )]);
    let room = RoomName::parse("rust-101").expect("room");
    let md = ExportFormat::Markdown.render(&room, &rows, &tokyo());
    assert!(md.starts_with("# rust\\-101\n"), "{md}");
    assert!(md.contains("- **2026-12-05T10:00:00+09:00** · \\_nick\\_\n"), "{md}");
    assert!(
        md.contains("  > \\# not a heading \\[link\\]\\(http://x\\) \\*\\*bold\\*\\*\n  > second line\n"),
        "{md}"
    );
    assert!(
        ExportFormat::Markdown
            .render(&room, &[], &tokyo())
            .contains("No questions.")
    );
}

#[tokio::test]
async fn the_scheduled_digest_mails_todays_questions_and_nothing_on_a_quiet_day() {
    let store = Arc::new(MemoryStore::new());
    let q = question("web-201", "today", "2026-12-05T09:00:00Z");
    archive(&store, &[&q]).await;
    let outbox = Arc::new(Outbox::default());
    let scheduled = ScheduledDigest {
        digester: Digester::new(rooms(), store, None),
        mailer: outbox.clone(),
        to: "teacher@example.com".into(),
        language: Language::Ja,
        time_zone: tokyo(),
    };
    let answer = scheduled.handle_at(serde_json::json!({}), now()).await.expect("ok");
    assert_eq!(answer["questions"], 1);
    let sent = outbox.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "teacher@example.com");
    assert!(sent[0].subject.contains("質問 1 件") && sent[0].subject.contains("rust-101, web-201"));
    // The console's request for another day, through SNS, as `events/` has it.
    let request: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/digest-console-request.json")).expect("json");
    let quiet = scheduled.handle_at(request, now()).await.expect("ok");
    assert_eq!(quiet[0]["day"], "2026-12-04");
    assert_eq!(quiet[0]["mailed"], false);
    let today: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/digest-today.json")).expect("json");
    assert_eq!(today, serde_json::json!({}));
    assert_eq!(outbox.sent().len(), 1, "nothing mailed for a day without questions");
    for bad in [
        serde_json::json!({"rooms": ["nope"]}),
        serde_json::json!({"date": "soon"}),
        serde_json::json!({"when": "today"}),
    ] {
        let err = scheduled.handle_at(bad.clone(), now()).await.expect_err("refused");
        assert!(matches!(err, DigestError::Event(_)), "{bad}: {err}");
    }
}

#[tokio::test]
async fn the_archive_keeps_the_first_delivery_and_forgets_after_its_expiry() {
    let store = MemoryStore::new();
    let q = question("rust-101", "once", "2026-12-05T01:00:00Z");
    let first: Timestamp = "2026-12-05T01:00:01Z".parse().expect("time");
    let expiry: Timestamp = "2027-01-04T01:00:01Z".parse().expect("time");
    store.archive(&q, first, expiry).await.expect("archive");
    store
        .archive(&q, "2026-12-05T02:00:00Z".parse().expect("time"), expiry)
        .await
        .expect("again");
    let (from, to) = day("2026-12-05").bounds().expect("bounds");
    let kept = store.archived(&q.room, from, to, now()).await.expect("read");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].delivered_at, first);
    let after = store
        .archived(&q.room, from, to, "2027-01-04T01:00:02Z".parse().expect("time"))
        .await
        .expect("read");
    assert!(after.is_empty(), "expired: {after:?}");
}
