//! The Discord bot adapter against `chat_fakes::discord`, a real HTTP server on loopback.

use std::sync::Mutex;
use std::time::Duration;

use chat_fakes::discord::Discord as Fake;

use super::*;
use crate::chat::http_client;
use crate::chat::secret::ChatSecret;
use crate::domain::{Question, QuestionText, RoomName};

const TOKEN: &str = "MTAwMDAw.SECRET-bot-token.xyz123";
const GENERAL: &str = "1300000000000000001";
const RANDOM: &str = "1300000000000000002";

/// A secret a test can change, as Secrets Manager's value changes when the instructor resets the token.
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

/// The fake with two channels, and an adapter whose requests time out after `timeout`.
async fn setup(timeout: Duration) -> (Arc<Fake>, chat_fakes::Running, Discord, Arc<Rotating>) {
    let fake = Fake::new(TOKEN, &[GENERAL, RANDOM]);
    let running = fake.serve().await;
    let secret = bot_secret(TOKEN);
    let adapter = Discord::new(http_client(timeout).expect("client"), &running.url, secret.clone());
    (fake, running, adapter, secret)
}

/// How often each question's marker line is in the fake's channels.
fn copies(fake: &Fake, id: QuestionId) -> usize {
    let marker = marker(id);
    fake.messages()
        .iter()
        .filter(|m| m.content.lines().any(|l| l == marker))
        .count()
}

/// What the consumer does with one question over SQS's deliveries: ask before posting again.
async fn deliver(adapter: &Discord, id: QuestionId, channel: &str, message: &ChatMessage) -> (Delivery, usize) {
    let mut attempt = 1;
    loop {
        assert!(attempt <= 5, "question {id} still not delivered after 5 attempts");
        if attempt > 1 && adapter.is_posted(id, channel).await.expect("is_posted") {
            return (Delivery::AlreadyPosted, attempt);
        }
        match adapter.post(id, channel, message).await {
            Ok(delivery) => return (delivery, attempt),
            Err(_) => attempt += 1,
        }
    }
}

#[tokio::test]
async fn a_hundred_questions_are_stored_once_while_a_tenth_of_answers_are_lost() {
    let (fake, _running, adapter, _) = setup(Duration::from_millis(400)).await;
    fake.faults.lose_every(10, Duration::from_secs(2));
    // As if every retry came minutes later: Discord's nonce no longer protects, only the history search does.
    fake.nonce_window(Duration::ZERO);
    let mut settled = 0;
    let mut ids = Vec::new();
    for n in 0..100 {
        let (id, message) = question(&format!("question number {n}"));
        let channel = if n % 2 == 0 { GENERAL } else { RANDOM };
        let (delivery, _) = deliver(&adapter, id, channel, &message).await;
        if delivery == Delivery::AlreadyPosted {
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
async fn a_fresh_environment_finds_a_redelivered_question_in_its_channel() {
    let (fake, running, first, _) = setup(Duration::from_secs(2)).await;
    fake.nonce_window(Duration::ZERO);
    let (id, message) = question("posted by an invocation that was stopped before it could say so");
    assert_eq!(first.post(id, GENERAL, &message).await.expect("post"), Delivery::Posted);

    let fresh = Discord::new(
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
    assert_eq!(fake.calls("create"), 1, "the redelivery created nothing");

    assert!(first.is_posted(id, GENERAL).await.expect("is_posted"));
    let (other, _) = question("never posted");
    assert!(!first.is_posted(other, RANDOM).await.expect("not posted"));
    let _ = first.post(other, RANDOM, &message).await.expect("post");
    assert!(first.is_posted(other, RANDOM).await.expect("is_posted"));
}

#[tokio::test]
async fn a_retry_within_the_nonce_window_returns_the_first_message() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("twice within a minute");
    adapter.post(id, GENERAL, &message).await.expect("first");
    adapter.post(id, GENERAL, &message).await.expect("second");
    assert_eq!(copies(&fake, id), 1, "enforce_nonce returned the first message");
}

#[tokio::test]
async fn the_body_carries_the_nonce_the_qrelay_line_and_no_mentions_or_previews() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("@everyone see https://example.com <@123>");
    adapter.post(id, GENERAL, &message).await.expect("post");
    let stored = fake.messages().pop().expect("stored");
    assert_eq!(stored.channel_id, GENERAL);
    assert_eq!(stored.nonce.as_deref(), Some(nonce(id).as_str()));
    assert!(stored.enforce_nonce);
    assert_eq!(stored.flags & SUPPRESS_EMBEDS, SUPPRESS_EMBEDS, "link previews off");
    assert_eq!(stored.allowed_mentions, Some(json!({ "parse": [] })));
    let expected = format!("{}\n{}", text_in(&message, Dialect::Discord).expect("text"), marker(id));
    assert_eq!(stored.content, expected);
}

#[test]
fn the_nonce_is_the_whole_id_within_25_characters() {
    let (a, _) = question("a");
    let (b, _) = question("b");
    assert_eq!(nonce(a), nonce(a), "deterministic");
    assert_ne!(nonce(a), nonce(b));
    let max = QuestionId::parse("ffffffff-ffff-4fff-bfff-ffffffffffff").expect("v4");
    assert!(nonce(max).chars().count() <= 25, "{}", nonce(max));
    assert!(nonce(a).starts_with('q') && nonce(a).bytes().all(|b| b.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn each_failure_maps_to_what_the_consumer_should_do() {
    let (fake, running, adapter, _) = setup(Duration::from_millis(500)).await;
    let (id, message) = question("hello");

    // 404 Unknown Channel (10003) and 403 Missing Access (50001): the instructor can fix them.
    let unknown = adapter.post(id, "1399999999999999999", &message).await;
    assert!(
        matches!(&unknown, Err(ChatError::Misconfigured(m)) if m.contains("10003")),
        "{unknown:?}"
    );
    // A channel named, not given by id: the instructor's to fix, not a message to drop.
    let named = adapter.post(id, "general", &message).await;
    assert!(
        matches!(&named, Err(ChatError::Misconfigured(m)) if m.contains("channel id")),
        "{named:?}"
    );
    fake.add_forbidden_channel("1300000000000000009");
    let forbidden = adapter.post(id, "1300000000000000009", &message).await;
    assert!(
        matches!(&forbidden, Err(ChatError::Misconfigured(m)) if m.contains("50001")),
        "{forbidden:?}"
    );

    // 429: until X-RateLimit-Reset-After (2.5 s).
    fake.rate_limit(Some(2.5));
    let before = SystemTime::now();
    match adapter.post(id, GENERAL, &message).await {
        Err(ChatError::RateLimited { reset: Some(reset) }) => {
            let wait = reset.duration_since(before).expect("in the future");
            assert!(
                wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4),
                "{wait:?}"
            );
        }
        other => panic!("expected RateLimited with a reset, got {other:?}"),
    }
    fake.rate_limit(None);

    // 5xx: unavailable, and nothing stored.
    fake.faults.fail_with(Some(502));
    let bad_gateway = adapter.post(id, GENERAL, &message).await;
    assert!(matches!(bad_gateway, Err(ChatError::Unavailable(_))), "{bad_gateway:?}");
    // 400 Invalid Form Body: never postable.
    fake.faults.fail_with(Some(400));
    let invalid = adapter.post(id, GENERAL, &message).await;
    assert!(matches!(invalid, Err(ChatError::Rejected(_))), "{invalid:?}");
    fake.faults.fail_with(None);
    assert_eq!(fake.messages().len(), 0);

    // A slow answer: timed out, and the history read times out too, so it stays unavailable…
    fake.faults.slow(Some(Duration::from_secs(2)));
    let slow = adapter.post(id, GENERAL, &message).await;
    assert!(
        matches!(&slow, Err(ChatError::Unavailable(m)) if m.contains("timed out")),
        "{slow:?}"
    );
    // …and once the chat answers again, the look-up finds it was stored: no second post.
    fake.faults.slow(None);
    assert!(adapter.is_posted(id, GENERAL).await.expect("is_posted"));
    assert_eq!(copies(&fake, id), 1);

    // 401: the token is refused even after reading the secret again.
    let refused = Discord::new(
        http_client(Duration::from_secs(2)).expect("client"),
        &running.url,
        bot_secret("wrong-token"),
    );
    let unauthorized = refused.post(id, GENERAL, &message).await;
    assert!(matches!(unauthorized, Err(ChatError::Unauthorized)), "{unauthorized:?}");
    let unauthorized = refused.is_posted(id, GENERAL).await;
    assert!(matches!(unauthorized, Err(ChatError::Unauthorized)), "{unauthorized:?}");
}

#[tokio::test]
async fn a_reset_token_is_read_again_after_a_401() {
    let (fake, _running, adapter, secret) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("before the reset");
    adapter.post(id, GENERAL, &message).await.expect("post");
    fake.set_bot_token("new-token");
    *secret.0.lock().expect("secret lock") = ChatSecret::BotToken {
        bot_token: "new-token".into(),
    };
    let (id, message) = question("after the reset");
    assert_eq!(
        adapter.post(id, GENERAL, &message).await.expect("post"),
        Delivery::Posted
    );
}

#[tokio::test]
async fn a_message_over_2000_characters_is_rejected_before_it_is_sent() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let text = "ab\n".repeat(QuestionText::MAX_CHARS_LIMIT / 3);
    let (id, message) = question(text.trim_end());
    let refused = adapter.post(id, GENERAL, &message).await;
    assert!(matches!(refused, Err(ChatError::Rejected(_))), "{refused:?}");
    assert_eq!(fake.calls("create"), 0);
}

#[tokio::test]
async fn the_bot_token_is_in_no_error_and_no_debug_output() {
    let (fake, running, adapter, _) = setup(Duration::from_millis(300)).await;
    let (id, message) = question("hello");
    let mut errors = Vec::new();
    for status in [400, 401, 403, 404, 429, 500, 503] {
        fake.faults.fail_with(Some(status));
        errors.push(adapter.post(id, GENERAL, &message).await.expect_err("fails"));
        errors.push(adapter.is_posted(id, GENERAL).await.expect_err("fails"));
    }
    fake.faults.fail_with(None);
    fake.faults.slow(Some(Duration::from_secs(1)));
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("times out"));
    drop(running);
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("refused"));
    for e in &errors {
        assert!(!format!("{e} {e:?}").contains("SECRET-bot-token"), "{e:?}");
    }
    assert!(!format!("{adapter:?}").contains("SECRET-bot-token"));
}

#[test]
fn discords_reset_after_header_is_read_in_seconds() {
    let mut headers = reqwest::header::HeaderMap::new();
    // Discord sends both; X-RateLimit-Reset is epoch SECONDS, which must not be read as milliseconds.
    headers.insert("x-ratelimit-reset", "1470173023.123".parse().expect("value"));
    headers.insert("x-ratelimit-reset-after", "1.5".parse().expect("value"));
    let before = SystemTime::now();
    let reset = rate_limit_reset(&headers).expect("a reset");
    let wait = reset.duration_since(before).expect("future");
    assert!(
        wait >= Duration::from_millis(1500) && wait < Duration::from_secs(3),
        "{wait:?}"
    );
}
