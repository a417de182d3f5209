//! The consumer's batch logic with a fake chat and a fake queue: outcomes, backoff, dead-lettering and the
//! circuit that stops a batch from knocking on a chat that is down.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessageAttribute;

use super::*;
use crate::domain::{QuestionId, QuestionMessage, QuestionText, RoomName};

/// A chat that answers from a script, one answer per call (the last answer repeats), and records each call.
#[derive(Default)]
struct ScriptedChat {
    answers: Mutex<Vec<Result<Delivery, ChatError>>>,
    calls: Mutex<Vec<(QuestionId, String, String)>>,
    /// Questions `is_posted` finds in the chat, and the ids it was asked about.
    in_chat: Mutex<Vec<QuestionId>>,
    lookups: Mutex<Vec<QuestionId>>,
}

impl ScriptedChat {
    fn answering(answers: Vec<Result<Delivery, ChatError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers),
            ..Default::default()
        })
    }

    fn calls(&self) -> usize {
        self.calls.lock().expect("lock").len()
    }
}

#[async_trait]
impl ChatPoster for ScriptedChat {
    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        self.calls
            .lock()
            .expect("lock")
            .push((id, channel.to_owned(), message.as_ref().to_owned()));
        let mut answers = self.answers.lock().expect("lock");
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            Clone::clone(answers.first().expect("an answer"))
        }
    }

    async fn is_posted(&self, id: QuestionId, _channel: &str) -> Result<bool, ChatError> {
        self.lookups.lock().expect("lock").push(id);
        Ok(self.in_chat.lock().expect("lock").contains(&id))
    }
}

/// Records what the consumer asks of the queue; dead-lettering fails when `dead_letter_fails`.
#[derive(Default)]
struct FakeQueue {
    delays: Mutex<Vec<(String, Duration)>>,
    dead_letters: Mutex<Vec<(String, String)>>,
    dead_letter_fails: bool,
}

#[async_trait]
impl QueueControl for FakeQueue {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> anyhow::Result<()> {
        self.delays
            .lock()
            .expect("lock")
            .push((receipt_handle.to_owned(), delay));
        Ok(())
    }

    async fn dead_letter(
        &self,
        body: &str,
        _: &HashMap<String, SqsMessageAttribute>,
        reason: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(!self.dead_letter_fails, "the DLQ is unreachable (fake)");
        self.dead_letters
            .lock()
            .expect("lock")
            .push((body.to_owned(), reason.to_owned()));
        Ok(())
    }
}

fn consumer(chat: Arc<ScriptedChat>, queue: Arc<FakeQueue>) -> Consumer {
    let rooms = Rooms::parse("general,rust-101=rust-course").expect("rooms");
    Consumer::new(
        rooms,
        TimeZone::get("Asia/Tokyo").expect("tz"),
        Backoff::default(),
        chat,
        queue,
    )
}

fn question_json(room: &str, text: &str) -> String {
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse(room).expect("room"),
        text: QuestionText::parse(text, 1000).expect("text"),
        nickname: None,
        submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
    };
    QuestionMessage::from(&question).to_json()
}

/// The deadline Lambda gives an invocation with the template's 30 s timeout.
fn in_thirty_seconds() -> SystemTime {
    SystemTime::now() + Duration::from_secs(30)
}

fn record(n: usize, body: String, receive_count: u32) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m{n}"));
    record.receipt_handle = Some(format!("rh{n}"));
    record.body = Some(body);
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    record
}

fn sns_envelope(message: &str) -> String {
    serde_json::json!({ "Type": "Notification", "MessageId": "x", "TopicArn": "arn:t", "Message": message }).to_string()
}

fn batch(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn envelopes_and_raw_bodies_are_both_posted_to_the_rooms_channel() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let queue = Arc::new(FakeQueue::default());
    let event = batch(vec![
        record(1, sns_envelope(&question_json("rust-101", "enveloped")), 1),
        record(2, question_json("general", "raw"), 1),
    ]);

    let response = consumer(chat.clone(), queue.clone())
        .handle(event, in_thirty_seconds())
        .await;

    assert!(failed_ids(&response).is_empty(), "nothing failed: {response:?}");
    let calls = chat.calls.lock().expect("lock");
    let channels: Vec<&str> = calls.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(
        channels,
        ["rust-course", "general"],
        "room → channel mapping, in batch order"
    );
    assert!(
        calls[0].2.ends_with("\n> enveloped") && calls[1].2.ends_with("\n> raw"),
        "rendered text"
    );
}

#[tokio::test]
async fn an_already_posted_question_is_not_a_failure() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::AlreadyPosted)]);
    let response = consumer(chat, Arc::default())
        .handle(
            batch(vec![record(1, question_json("general", "q"), 2)]),
            in_thirty_seconds(),
        )
        .await;
    assert!(failed_ids(&response).is_empty());
}

#[tokio::test]
async fn a_down_chat_fails_the_whole_batch_after_one_attempt_with_backoff_by_receive_count() {
    let chat = ScriptedChat::answering(vec![Err(ChatError::Unavailable("connection refused".into()))]);
    let queue = Arc::new(FakeQueue::default());
    let event = batch(vec![
        record(1, question_json("general", "a"), 1),
        record(2, question_json("general", "b"), 5),
        record(3, question_json("general", "c"), 30),
    ]);

    let response = consumer(chat.clone(), queue.clone())
        .handle(event, in_thirty_seconds())
        .await;

    assert_eq!(failed_ids(&response), ["m1", "m2", "m3"], "every record comes back");
    assert_eq!(chat.calls(), 1, "the chat is not knocked on again in the same batch");
    let delays = queue.delays.lock().expect("lock");
    let expected = [("rh1", 5..=10), ("rh2", 80..=160), ("rh3", 450..=900)];
    for ((handle, delay), (expected_handle, range)) in delays.iter().zip(expected) {
        assert_eq!(handle, expected_handle);
        assert!(
            range.contains(&delay.as_secs()),
            "{handle}: {delay:?} not within {range:?} s"
        );
    }
}

#[tokio::test]
async fn a_channel_problem_only_fails_that_record() {
    let chat = ScriptedChat::answering(vec![
        Err(ChatError::Misconfigured("no such room".into())),
        Ok(Delivery::Posted),
    ]);
    let queue = Arc::new(FakeQueue::default());
    let event = batch(vec![
        record(1, question_json("rust-101", "a"), 1),
        record(2, question_json("general", "b"), 1),
    ]);

    let response = consumer(chat.clone(), queue).handle(event, in_thirty_seconds()).await;

    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(chat.calls(), 2, "other rooms are still served");
}

#[tokio::test]
async fn undeliverable_records_go_straight_to_the_dead_letter_queue() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let queue = Arc::new(FakeQueue::default());
    let event = batch(vec![
        record(1, "not json at all".into(), 1),
        record(2, sns_envelope("{\"v\":9}"), 1),
        record(3, question_json("python", "unknown room"), 1),
        record(4, question_json("general", "fine"), 1),
    ]);

    let response = consumer(chat.clone(), queue.clone())
        .handle(event, in_thirty_seconds())
        .await;

    assert!(
        failed_ids(&response).is_empty(),
        "dead-lettered records are deleted from the main queue"
    );
    let dead = queue.dead_letters.lock().expect("lock");
    assert_eq!(dead.len(), 3, "three copies in the DLQ");
    assert_eq!(dead[0].0, "not json at all", "body intact");
    assert!(dead[2].1.contains("python"), "reason names the room: {}", dead[2].1);
    assert_eq!(chat.calls(), 1, "only the real question reached the chat");
}

#[tokio::test]
async fn a_message_the_chat_rejects_for_good_is_dead_lettered() {
    let chat = ScriptedChat::answering(vec![Err(ChatError::Rejected("error-action-not-allowed".into()))]);
    let queue = Arc::new(FakeQueue::default());
    let response = consumer(chat, queue.clone())
        .handle(
            batch(vec![record(1, question_json("general", "x"), 1)]),
            in_thirty_seconds(),
        )
        .await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(queue.dead_letters.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn if_dead_lettering_fails_the_record_is_retried_not_dropped() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let queue = Arc::new(FakeQueue {
        dead_letter_fails: true,
        ..Default::default()
    });
    let response = consumer(chat, queue.clone())
        .handle(batch(vec![record(1, "garbage".into(), 1)]), in_thirty_seconds())
        .await;
    assert_eq!(failed_ids(&response), ["m1"], "kept in the main queue");
    assert_eq!(queue.delays.lock().expect("lock").len(), 1, "with a backoff");
}

#[tokio::test]
async fn a_rate_limit_is_honoured_across_batches() {
    let reset = SystemTime::now() + Duration::from_secs(42);
    let chat = ScriptedChat::answering(vec![Err(ChatError::RateLimited { reset: Some(reset) })]);
    let queue = Arc::new(FakeQueue::default());
    let consumer = consumer(chat.clone(), queue.clone());

    let first = consumer
        .handle(
            batch(vec![record(1, question_json("general", "a"), 1)]),
            in_thirty_seconds(),
        )
        .await;
    let second = consumer
        .handle(
            batch(vec![record(2, question_json("general", "b"), 1)]),
            in_thirty_seconds(),
        )
        .await;

    assert_eq!((failed_ids(&first), failed_ids(&second)), (vec!["m1"], vec!["m2"]));
    assert_eq!(chat.calls(), 1, "no call before the reset time");
    for (handle, delay) in queue.delays.lock().expect("lock").iter() {
        assert!(
            (42..=46).contains(&delay.as_secs()),
            "{handle}: waits until the reset, got {delay:?}"
        );
    }
}

#[tokio::test]
async fn each_room_keeps_its_order_and_a_down_chat_is_tried_at_most_once_per_room() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let texts = ["g1", "r1", "g2", "r2", "g3"];
    let records = texts
        .iter()
        .enumerate()
        .map(|(n, text)| {
            record(
                n,
                question_json(if text.starts_with('g') { "general" } else { "rust-101" }, text),
                1,
            )
        })
        .collect();

    let response = consumer(chat.clone(), Arc::default())
        .handle(batch(records), in_thirty_seconds())
        .await;

    assert!(failed_ids(&response).is_empty());
    let calls = chat.calls.lock().expect("lock").clone();
    let order = |channel: &str| -> Vec<String> {
        calls
            .iter()
            .filter(|(_, c, _)| c == channel)
            .map(|(_, _, m)| m.rsplit("\n> ").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(order("general"), ["g1", "g2", "g3"], "general in queue order");
    assert_eq!(order("rust-course"), ["r1", "r2"], "rust-101 in queue order");

    let down = ScriptedChat::answering(vec![Err(ChatError::Unavailable("down".into()))]);
    let records = (0..6)
        .map(|n| {
            record(
                n,
                question_json(if n % 2 == 0 { "general" } else { "rust-101" }, "q"),
                1,
            )
        })
        .collect();
    let response = consumer(down.clone(), Arc::default())
        .handle(batch(records), in_thirty_seconds())
        .await;
    assert_eq!(failed_ids(&response).len(), 6, "all come back");
    assert!(down.calls() <= 2, "at most one attempt per room, got {}", down.calls());
}

#[tokio::test]
async fn no_record_is_started_with_less_than_twice_the_chat_timeout_left() {
    // Arrange: 3 s left, and a chat timeout of 2 s: a record could take 4 s.
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let queue = Arc::new(FakeQueue::default());
    let records: Vec<SqsMessage> = (1..=3)
        .map(|n| record(n, question_json("general", &format!("q{n}")), 1))
        .collect();
    let consumer = consumer(chat.clone(), queue.clone()).with_chat_timeout(Duration::from_secs(2));

    // Act
    let response = consumer
        .handle(batch(records), SystemTime::now() + Duration::from_secs(3))
        .await;

    // Assert: nothing attempted, everything back soon, without spending the backoff.
    assert_eq!(chat.calls(), 0, "no chat request started");
    assert_eq!(failed_ids(&response), ["m1", "m2", "m3"]);
    let delays = queue.delays.lock().expect("lock");
    assert_eq!(delays.len(), 3, "{delays:?}");
    assert!(
        delays.iter().all(|(_, d)| *d == OUT_OF_TIME_DELAY),
        "a short delay, not the backoff: {delays:?}"
    );
}

#[tokio::test]
async fn a_redelivered_question_already_in_the_chat_is_not_posted_again() {
    // Arrange: the question's second delivery; an earlier invocation posted it and was stopped before answering.
    let json = question_json("general", "asked once");
    let id = QuestionMessage::from_json(&json).expect("json").id;
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    chat.in_chat.lock().expect("lock").push(id);

    // Act
    let response = consumer(chat.clone(), Arc::default())
        .handle(batch(vec![record(1, json, 2)]), in_thirty_seconds())
        .await;

    // Assert
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert_eq!(chat.calls(), 0, "not posted again");
    assert_eq!(*chat.lookups.lock().expect("lock"), [id], "asked first");
}

#[tokio::test]
async fn a_first_delivery_is_posted_without_asking_first() {
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let response = consumer(chat.clone(), Arc::default())
        .handle(
            batch(vec![record(1, question_json("general", "new"), 1)]),
            in_thirty_seconds(),
        )
        .await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert_eq!(chat.calls(), 1);
    assert!(chat.lookups.lock().expect("lock").is_empty(), "one request, not two");
}

#[tokio::test]
async fn a_flood_of_one_text_in_a_room_is_posted_once() {
    // Arrange: five questions (new ids each, as from five fresh pages) with the same text, one in another room.
    let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
    let mut records: Vec<SqsMessage> = (1..=5)
        .map(|n| {
            record(
                n,
                question_json("general", if n % 2 == 0 { "SPAM  spam" } else { "spam spam" }),
                1,
            )
        })
        .collect();
    records.push(record(6, question_json("rust-101", "spam spam"), 1));

    // Act
    let response = consumer(chat.clone(), Arc::default())
        .handle(batch(records), in_thirty_seconds())
        .await;

    // Assert: none failed (a duplicate is done with), one post per room.
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    let calls = chat.calls.lock().expect("lock");
    let channels: Vec<&str> = calls.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(channels, ["general", "rust-course"], "one post per room");
}

mod control {
    //! The instructor's control seen from the consumer: rooms under review hold their questions, decisions are
    //! honoured when a question comes back, and the flood breaker holds a room's questions past the threshold.

    use super::*;
    use crate::control::{ControlStore, Decided, Decision, MemoryStore, RoomState, StateReason, flood_notice_id};

    const THRESHOLD: u32 = 20;

    fn controlled(chat: Arc<ScriptedChat>, store: Arc<MemoryStore>) -> Consumer {
        consumer(chat, Arc::new(FakeQueue::default())).with_control(Control {
            // No caching: every record reads the store, as a consumer does once its cache expired.
            rooms: Arc::new(CachedRooms::new(store, Duration::ZERO)),
            flood_threshold: THRESHOLD,
            held_for: Duration::from_secs(14 * 86_400),
            keep_delivered_for: Some(Duration::from_secs(30 * 86_400)),
        })
    }

    fn general() -> RoomName {
        RoomName::parse("general").expect("room")
    }

    fn question_at(text: &str, submitted_at: &str) -> (QuestionId, String) {
        let question = Question {
            id: QuestionId::new_random(),
            room: general(),
            text: QuestionText::parse(text, 1000).expect("text"),
            nickname: None,
            submitted_at: submitted_at.parse().expect("time"),
        };
        (question.id, QuestionMessage::from(&question).to_json())
    }

    fn posted_ids(chat: &ScriptedChat) -> Vec<QuestionId> {
        chat.calls.lock().expect("lock").iter().map(|(id, _, _)| *id).collect()
    }

    #[tokio::test]
    async fn a_delivered_question_is_archived_once_with_its_first_delivery_time() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted), Ok(Delivery::AlreadyPosted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = controlled(chat.clone(), store.clone());
        let (id, body) = question_at("keep me for the digest", "2026-11-22T09:30:00Z");
        let before = jiff::Timestamp::now();
        let response = consumer
            .handle(batch(vec![record(1, body.clone(), 1)]), in_thirty_seconds())
            .await;
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        // SQS delivers it again: the chat says it is there, and the archive keeps one copy, first time kept.
        consumer
            .handle(batch(vec![record(2, body, 2)]), in_thirty_seconds())
            .await;
        let day_from = "2026-11-22T00:00:00Z".parse().expect("time");
        let day_to = "2026-11-23T00:00:00Z".parse().expect("time");
        let kept = store
            .archived(&general(), day_from, day_to, jiff::Timestamp::now())
            .await
            .expect("read");
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].question.id, id);
        assert!(kept[0].delivered_at >= before && kept[0].delivered_at <= jiff::Timestamp::now());
        let thirty_days = kept[0].expires_at.duration_since(kept[0].delivered_at).as_secs();
        assert_eq!(thirty_days, 30 * 86_400);
    }

    #[tokio::test]
    async fn a_question_posted_but_not_archived_comes_back_and_is_archived_without_a_second_post() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted), Ok(Delivery::AlreadyPosted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = controlled(chat.clone(), store.clone());
        let (id, body) = question_at("archive me later", "2026-11-22T09:30:00Z");
        store.fail_archiving(true);
        let response = consumer
            .handle(batch(vec![record(1, body.clone(), 1)]), in_thirty_seconds())
            .await;
        assert_eq!(failed_ids(&response), ["m1"], "retried: {response:?}");
        store.fail_archiving(false);
        // The chat has it (its first post went through): the second delivery finds it there.
        chat.in_chat.lock().expect("lock").push(id);
        let response = consumer
            .handle(batch(vec![record(2, body, 2)]), in_thirty_seconds())
            .await;
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        assert_eq!(posted_ids(&chat), [id], "posted once: the retry only asked");
        let kept = store
            .archived(
                &general(),
                "2026-11-22T00:00:00Z".parse().expect("time"),
                "2026-11-23T00:00:00Z".parse().expect("time"),
                jiff::Timestamp::now(),
            )
            .await
            .expect("read");
        assert_eq!(kept.len(), 1);
    }

    #[tokio::test]
    async fn with_retention_zero_nothing_is_archived() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = consumer(chat.clone(), Arc::new(FakeQueue::default())).with_control(Control {
            rooms: Arc::new(CachedRooms::new(store.clone(), Duration::ZERO)),
            flood_threshold: THRESHOLD,
            held_for: Duration::from_secs(14 * 86_400),
            keep_delivered_for: None,
        });
        let (_, body) = question_at("not kept", "2026-11-22T09:30:00Z");
        consumer
            .handle(batch(vec![record(1, body, 1)]), in_thirty_seconds())
            .await;
        assert_eq!(chat.calls(), 1);
        let kept = store
            .archived(
                &general(),
                "2026-11-22T00:00:00Z".parse().expect("time"),
                "2026-11-23T00:00:00Z".parse().expect("time"),
                jiff::Timestamp::now(),
            )
            .await
            .expect("read");
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[tokio::test]
    async fn a_room_under_review_holds_its_questions_until_a_decision_and_then_honours_it() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
        let store = Arc::new(MemoryStore::new());
        let now = jiff::Timestamp::now();
        store
            .set_room_state(&general(), RoomState::Review, now)
            .await
            .expect("set");
        let consumer = controlled(chat.clone(), store.clone());
        let (approved, approved_body) = question_at("approve me", "2026-11-22T09:30:00Z");
        let (rejected, rejected_body) = question_at("reject me", "2026-11-22T09:30:10Z");

        let response = consumer
            .handle(
                batch(vec![
                    record(1, approved_body.clone(), 1),
                    record(2, rejected_body.clone(), 1),
                ]),
                in_thirty_seconds(),
            )
            .await;
        assert!(
            failed_ids(&response).is_empty(),
            "held records are done with: {response:?}"
        );
        assert_eq!(chat.calls(), 0, "nothing is posted while under review");
        let held = store.held(&general(), now).await.expect("held");
        assert_eq!(held.len(), 2, "both are held: {held:?}");

        // The same records again (SQS may deliver twice): still held, still not posted.
        consumer
            .handle(batch(vec![record(3, approved_body.clone(), 2)]), in_thirty_seconds())
            .await;
        assert_eq!(chat.calls(), 0);

        let Decided::Now(_) = store
            .decide(&general(), approved, Decision::Approve, now)
            .await
            .expect("approve")
        else {
            panic!("the first approval decides");
        };
        store
            .decide(&general(), rejected, Decision::Reject, now)
            .await
            .expect("reject");
        // The console publishes the approved question again; the rejected one could only come back as a
        // redelivery of its old record.
        let response = consumer
            .handle(
                batch(vec![record(4, approved_body, 1), record(5, rejected_body, 3)]),
                in_thirty_seconds(),
            )
            .await;
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        assert_eq!(
            posted_ids(&chat),
            [approved],
            "the approved question, with its own id, and nothing else"
        );
    }

    #[tokio::test]
    async fn the_flood_breaker_holds_the_rest_of_a_flooded_minute_and_posts_one_notice() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = controlled(chat.clone(), store.clone());
        let questions: Vec<(QuestionId, String)> = (0..30)
            .map(|i| question_at(&format!("question number {i}"), &format!("2026-11-22T09:30:{:02}Z", i)))
            .collect();
        for (n, chunk) in questions.chunks(10).enumerate() {
            let records = chunk
                .iter()
                .enumerate()
                .map(|(i, (_, body))| record(n * 10 + i, body.clone(), 1))
                .collect();
            let response = consumer.handle(batch(records), in_thirty_seconds()).await;
            assert!(failed_ids(&response).is_empty(), "{response:?}");
        }

        let notice = flood_notice_id(
            &general(),
            "2026-11-22T09:30:00Z"
                .parse::<jiff::Timestamp>()
                .expect("t")
                .as_second()
                / 60,
        );
        let posted = posted_ids(&chat);
        let first_twenty: Vec<QuestionId> = questions[..20].iter().map(|(id, _)| *id).collect();
        assert_eq!(
            &posted[..20],
            &first_twenty[..],
            "the first {THRESHOLD} are posted in order"
        );
        assert_eq!(&posted[20..], &[notice], "then one notice, and nothing else");
        let held = store.held(&general(), jiff::Timestamp::now()).await.expect("held");
        assert_eq!(held.len(), 10, "the other 10 are held");
        let status = store.room_status(&general()).await.expect("status");
        assert_eq!(
            (status.state, status.reason),
            (RoomState::Review, Some(StateReason::Flood))
        );
        assert_eq!(status.pending_notice, None, "the notice is no longer owed");
    }

    #[tokio::test]
    async fn identical_texts_count_once_for_the_flood_breaker() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = controlled(chat.clone(), store.clone());
        let records = (0..30)
            .map(|i| {
                // Case and spacing differences are the same text.
                let text = if i % 2 == 0 { "Same   question" } else { "same question" };
                record(i, question_at(text, "2026-11-22T09:30:00Z").1, 1)
            })
            .collect();
        consumer.handle(batch(records), in_thirty_seconds()).await;
        let status = store.room_status(&general()).await.expect("status");
        assert_eq!(status.state, RoomState::Open, "one text, counted once: no flood");
        assert_eq!(chat.calls(), 1, "and posted once (the duplicate filter)");
    }

    #[tokio::test]
    async fn a_flood_notice_the_chat_could_not_take_is_posted_when_the_chat_is_back() {
        let chat = ScriptedChat::answering(vec![Ok(Delivery::Posted)]);
        let store = Arc::new(MemoryStore::new());
        let consumer = controlled(chat.clone(), store.clone());
        let records: Vec<SqsMessage> = (0..THRESHOLD as usize)
            .map(|i| record(i, question_at(&format!("q{i}"), "2026-11-22T09:30:00Z").1, 1))
            .collect();
        consumer.handle(batch(records), in_thirty_seconds()).await;
        assert_eq!(chat.calls(), THRESHOLD as usize);

        // The chat goes down just as the breaker trips.
        *chat.answers.lock().expect("lock") = vec![Err(ChatError::Unavailable("down".into()))];
        let (_, tripping) = question_at("one too many", "2026-11-22T09:30:30Z");
        let response = consumer
            .handle(batch(vec![record(100, tripping.clone(), 1)]), in_thirty_seconds())
            .await;
        assert_eq!(
            failed_ids(&response),
            ["m100"],
            "the record comes back until the notice is out"
        );
        assert!(
            store
                .room_status(&general())
                .await
                .expect("status")
                .pending_notice
                .is_some()
        );

        *chat.answers.lock().expect("lock") = vec![Ok(Delivery::Posted)];
        let response = consumer
            .handle(batch(vec![record(100, tripping, 2)]), in_thirty_seconds())
            .await;
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        let notice = flood_notice_id(
            &general(),
            "2026-11-22T09:30:00Z"
                .parse::<jiff::Timestamp>()
                .expect("t")
                .as_second()
                / 60,
        );
        let notices = posted_ids(&chat).iter().filter(|id| **id == notice).count();
        assert_eq!(
            notices, 2,
            "one failed attempt and one post, under the same id (the chat keeps one)"
        );
        assert_eq!(
            store.room_status(&general()).await.expect("status").pending_notice,
            None
        );
        assert_eq!(
            store
                .held(&general(), jiff::Timestamp::now())
                .await
                .expect("held")
                .len(),
            1
        );
    }
}
