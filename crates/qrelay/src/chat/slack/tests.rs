//! The Slack Web API adapter against `chat_fakes::slack`, a real HTTP server on loopback.

use std::sync::Mutex;
use std::time::Duration;

use chat_fakes::slack::Slack as Fake;

use super::*;
use crate::chat::http_client;
use crate::chat::secret::ChatSecret;
use crate::domain::{Question, QuestionText, RoomName};

const TOKEN: &str = "xoxb-1111-2222-SECRETslacktoken";
const GENERAL: &str = "C0123456789";
const RANDOM: &str = "C0987654321";

/// A secret a test can change, as Secrets Manager's value changes when the instructor reinstalls the app.
struct Rotating(Mutex<ChatSecret>);

#[async_trait]
impl SecretSource for Rotating {
    async fn fetch(&self) -> anyhow::Result<ChatSecret> {
        Ok(self.0.lock().expect("secret lock").clone())
    }
}

fn bot_secret(token: &str) -> Arc<Rotating> {
    Arc::new(Rotating(Mutex::new(ChatSecret::BotToken {
        bot_token: token.into(),
    })))
}

fn question(text: &str) -> (QuestionId, ChatMessage) {
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse("rust-101").expect("room"),
        text: QuestionText::parse(text, QuestionText::MAX_CHARS_LIMIT).expect("text"),
        nickname: None,
        submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
    };
    let message = ChatMessage::render(&question, &jiff::tz::TimeZone::UTC).expect("fits");
    (question.id, message)
}

async fn setup(timeout: Duration) -> (Arc<Fake>, chat_fakes::Running, Slack, Arc<Rotating>) {
    let fake = Fake::new(TOKEN, &[GENERAL, RANDOM]);
    let running = fake.serve().await;
    let secret = bot_secret(TOKEN);
    let adapter = Slack::new(http_client(timeout).expect("client"), &running.url, secret.clone());
    (fake, running, adapter, secret)
}

/// How often question `id` is stored in the fake (by its metadata).
fn copies(fake: &Fake, id: QuestionId) -> usize {
    fake.messages()
        .iter()
        .filter(|m| m.metadata == Some(metadata(id)))
        .count()
}

/// What the consumer does with one question over SQS's deliveries: ask before posting again.
async fn deliver(adapter: &Slack, id: QuestionId, channel: &str, message: &ChatMessage) -> Delivery {
    let mut attempt = 1;
    loop {
        assert!(attempt <= 5, "question {id} still not delivered after 5 attempts");
        if attempt > 1 && adapter.is_posted(id, channel).await.expect("is_posted") {
            return Delivery::AlreadyPosted;
        }
        match adapter.post(id, channel, message).await {
            Ok(delivery) => return delivery,
            Err(_) => attempt += 1,
        }
    }
}

#[tokio::test]
async fn a_hundred_questions_are_stored_once_while_a_tenth_of_answers_are_lost() {
    let (fake, _running, adapter, _) = setup(Duration::from_millis(400)).await;
    fake.faults.lose_every(10, Duration::from_secs(2));
    let mut settled = 0;
    let mut ids = Vec::new();
    for n in 0..100 {
        let (id, message) = question(&format!("question number {n}"));
        let channel = if n % 2 == 0 { GENERAL } else { RANDOM };
        if deliver(&adapter, id, channel, &message).await == Delivery::AlreadyPosted {
            settled += 1;
        }
        ids.push(id);
    }
    assert_eq!(settled, 10, "every lost answer was settled by finding the post");
    for id in &ids {
        assert_eq!(copies(&fake, *id), 1, "question {id}");
    }
    assert_eq!(fake.messages().len(), 100);
}

#[tokio::test]
async fn without_the_check_a_lost_answer_means_a_duplicate() {
    // What the check prevents: Slack stores the same body twice.
    let (fake, running, _, _) = setup(Duration::from_millis(400)).await;
    let (id, message) = question("posted twice without a look");
    fake.faults.lose_every(1, Duration::from_secs(2));
    let http = http_client(Duration::from_millis(400)).expect("client");
    let body = json!({"channel": GENERAL, "text": text(&message).expect("text"), "metadata": metadata(id)});
    for _ in 0..2 {
        let sent = http
            .post(format!("{}/api/chat.postMessage", running.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await;
        assert!(sent.is_err(), "the answer was lost");
    }
    assert_eq!(copies(&fake, id), 2);
}

#[tokio::test]
async fn a_fresh_environment_finds_a_redelivered_question_in_its_channel() {
    let (fake, running, first, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("posted by an invocation that was stopped before it could say so");
    assert_eq!(first.post(id, GENERAL, &message).await.expect("post"), Delivery::Posted);

    let fresh = Slack::new(
        http_client(Duration::from_secs(2)).expect("client"),
        &running.url,
        bot_secret(TOKEN),
    );
    // A new execution environment, asked about a question SQS delivers again: it reads the channel.
    assert!(
        fresh.is_posted(id, GENERAL).await.expect("is_posted"),
        "found in the channel"
    );
    assert_eq!(copies(&fake, id), 1);
    assert_eq!(fake.calls("chat.postMessage"), 1, "the redelivery posted nothing");

    assert!(first.is_posted(id, GENERAL).await.expect("is_posted"));
    let (other, _) = question("never posted");
    assert!(!first.is_posted(other, RANDOM).await.expect("not posted"));
    first.post(other, RANDOM, &message).await.expect("post");
    assert!(first.is_posted(other, RANDOM).await.expect("is_posted"));
}

#[tokio::test]
async fn the_body_carries_the_metadata_and_no_previews() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("see https://example.com");
    adapter.post(id, GENERAL, &message).await.expect("post");
    let stored = fake.messages().pop().expect("stored");
    assert_eq!(stored.channel, GENERAL);
    assert_eq!(stored.text, text(&message).expect("text"));
    assert_eq!((stored.unfurl_links, stored.unfurl_media), (Some(false), Some(false)));
    assert_eq!(
        stored.metadata,
        Some(json!({"event_type": "qrelay_question", "event_payload": {"question_id": id.to_string()}}))
    );
    assert_eq!(adapter.guarantee(), Guarantee::CheckedRetry);
}

#[tokio::test]
async fn each_failure_maps_to_its_chat_error() {
    let (fake, _running, adapter, _) = setup(Duration::from_millis(300)).await;
    let (id, message) = question("a question");

    fake.add_foreign_channel("C0000000001");
    let e = adapter
        .post(id, "C0000000001", &message)
        .await
        .expect_err("not in channel");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("not a member")),
        "{e:?}"
    );
    let e = adapter.post(id, "C0000000002", &message).await.expect_err("unknown");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("not found")),
        "{e:?}"
    );
    let e = adapter.post(id, "general", &message).await.expect_err("a name");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("by ID")),
        "{e:?}"
    );

    fake.rate_limit(Some(30));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("429");
    let ChatError::RateLimited { reset: Some(reset) } = e else {
        panic!("expected a reset: {e:?}")
    };
    assert!(reset > SystemTime::now() + Duration::from_secs(20));
    fake.rate_limit(None);

    fake.faults.fail_with(Some(503));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("503");
    assert!(matches!(e, ChatError::Unavailable(_)), "{e:?}");
    fake.faults.fail_with(Some(403));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("missing scope");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("missing_scope")),
        "{e:?}"
    );
    fake.faults.fail_with(None);

    assert_eq!(copies(&fake, id), 0, "nothing was stored by any refusal");

    // A slow answer: stored, but neither the answer nor the history came in time.
    fake.faults.slow(Some(Duration::from_secs(1)));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("slow");
    assert!(matches!(e, ChatError::Unavailable(_)), "{e:?}");
    fake.faults.slow(None);
    assert!(
        adapter.is_posted(id, GENERAL).await.expect("is_posted"),
        "found once Slack answers again"
    );

    // A question never reaches 40,000 characters (text_for refuses it first), so Slack's answer is checked alone.
    assert!(matches!(
        classify(GENERAL, "msg_too_long", None),
        ChatError::Rejected(_)
    ));
    assert!(matches!(
        classify(GENERAL, "invalid_auth", None),
        ChatError::Unauthorized
    ));
    assert!(matches!(
        classify(GENERAL, "internal_error", None),
        ChatError::Unavailable(_)
    ));
}

#[tokio::test]
async fn a_revoked_token_is_read_again_once_then_unauthorized() {
    let (fake, _running, adapter, secret) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("after the app was reinstalled");
    adapter.post(id, GENERAL, &message).await.expect("first");
    fake.set_token("xoxb-new-SECRET");
    let (id2, _) = question("second");
    let e = adapter.post(id2, GENERAL, &message).await.expect_err("revoked");
    assert!(matches!(e, ChatError::Unauthorized), "{e:?}");
    *secret.0.lock().expect("lock") = ChatSecret::BotToken {
        bot_token: "xoxb-new-SECRET".into(),
    };
    assert_eq!(
        adapter.post(id2, GENERAL, &message).await.expect("fresh token"),
        Delivery::Posted
    );
}

#[tokio::test]
async fn the_token_is_in_no_error_and_no_debug() {
    let (fake, _running, adapter, _) = setup(Duration::from_millis(300)).await;
    let (id, message) = question("a question");
    let mut errors = Vec::new();
    fake.set_token("xoxb-other");
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("401"));
    fake.set_token(TOKEN);
    errors.push(adapter.post(id, "C0000000002", &message).await.expect_err("unknown"));
    fake.faults.fail_with(Some(500));
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("500"));
    fake.faults.fail_with(None);
    fake.faults.slow(Some(Duration::from_secs(1)));
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("slow"));
    for e in &errors {
        assert!(!format!("{e} {e:?}").contains("SECRET"), "{e:?}");
    }
    assert!(!format!("{adapter:?}").contains("SECRET"));
}

#[tokio::test]
async fn what_reaches_slack_mentions_no_one() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("<!channel> <!here> <@U0123ABCD> <https://evil.example|your grades>");
    adapter.post(id, GENERAL, &message).await.expect("post");
    let stored = fake.messages().pop().expect("stored").text;
    for raw in ["<!channel>", "<!here>", "<@U0123ABCD>", "<https://evil.example|"] {
        assert!(!stored.contains(raw), "{raw} reached Slack as is: {stored}");
    }
}
