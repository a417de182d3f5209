//! The webhook adapter: each target's body, and Discord's webhook end to end against `chat_fakes::discord`.

use std::time::{Duration, SystemTime};

use chat_fakes::discord::Discord as Fake;

use super::*;
use crate::chat::discord::{SUPPRESS_EMBEDS, text_in};
use crate::chat::http_client;
use crate::chat::secret::StaticSecret;
use crate::domain::{Question, QuestionText, RoomName};

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

fn webhook(url: &str, timeout: Duration) -> Webhook {
    Webhook::new(
        http_client(timeout).expect("client"),
        Arc::new(StaticSecret(ChatSecret::Webhook {
            webhook_url: url.to_owned(),
        })),
    )
}

#[test]
fn the_target_is_read_from_the_url() {
    for (url, target) in [
        ("https://hooks.slack.com/services/T0/B0/x", Target::Slack),
        ("https://discord.com/api/webhooks/123456/tok-en", Target::Discord),
        ("https://discordapp.com/api/webhooks/123456/tok", Target::Discord),
        (
            "https://canary.discord.com/api/webhooks/123456/tok?thread_id=9",
            Target::Discord,
        ),
        ("http://127.0.0.1:4000/api/webhooks/123456/tok", Target::Discord),
        (
            "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k&token=t",
            Target::GoogleChat,
        ),
        ("https://chat.example.com/hooks/abc/def", Target::RocketChat),
        ("https://mattermost.example.com/hooks/xyz", Target::RocketChat),
        ("https://discord.com/channels/1/2", Target::RocketChat),
    ] {
        assert_eq!(Target::of(url), target, "{url}");
    }
}

#[test]
fn discord_webhooks_are_sent_with_wait_true() {
    assert_eq!(
        post_url("https://discord.com/api/webhooks/1/tok"),
        "https://discord.com/api/webhooks/1/tok?wait=true"
    );
    assert_eq!(
        post_url("https://discord.com/api/webhooks/1/tok?thread_id=7&wait=false"),
        "https://discord.com/api/webhooks/1/tok?thread_id=7&wait=true"
    );
    let slack = "https://hooks.slack.com/services/T/B/x";
    assert_eq!(post_url(slack), slack);
}

#[test]
fn every_target_gets_its_body_in_its_syntax_with_previews_off() {
    let (_, message) = question("<!channel> @everyone see https://example.com <users/all>");

    let slack = body("https://hooks.slack.com/services/T/B/x", &message).expect("slack");
    assert_eq!(
        (slack["unfurl_links"].as_bool(), slack["unfurl_media"].as_bool()),
        (Some(false), Some(false))
    );
    assert!(
        slack.get("parseUrls").is_none(),
        "Slack's schema has no parseUrls: {slack}"
    );
    assert_eq!(
        slack["text"].as_str(),
        Some(text_in(&message, Dialect::Slack).expect("text").as_str())
    );

    let discord = body("https://discord.com/api/webhooks/1/tok", &message).expect("discord");
    assert_eq!(
        discord["content"].as_str(),
        Some(text_in(&message, Dialect::Discord).expect("text").as_str())
    );
    assert_eq!(discord["allowed_mentions"], json!({ "parse": [] }));
    assert_eq!(discord["flags"].as_u64(), Some(SUPPRESS_EMBEDS));
    assert!(discord.get("text").is_none(), "{discord}");

    let google = body(
        "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t",
        &message,
    )
    .expect("google");
    assert_eq!(
        google,
        json!({ "text": text_in(&message, Dialect::GoogleChat).expect("text") })
    );

    let rocket = body("https://chat.example/hooks/abc/def", &message).expect("rocket");
    assert_eq!(rocket["parseUrls"].as_bool(), Some(false), "{rocket}");
    assert_eq!(rocket["text"].as_str(), Some(message.as_ref()));
}

#[tokio::test]
async fn a_discord_webhook_post_is_stored_once_the_answer_says_so() {
    let fake = Fake::new("unused-bot-token", &[]);
    let running = fake.serve().await;
    let hook = webhook(
        &format!("{}{}", running.url, fake.webhook_path()),
        Duration::from_secs(2),
    );
    assert_eq!(hook.guarantee(), Guarantee::AtLeastOnce);
    let (id, message) = question("@here hello");
    assert_eq!(
        hook.post(id, "ignored", &message).await.expect("post"),
        Delivery::Posted
    );
    let stored = fake.messages();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].via_webhook && stored[0].waited, "{stored:?}");
    assert_eq!(stored[0].flags, SUPPRESS_EMBEDS);
    assert_eq!(stored[0].allowed_mentions, Some(json!({ "parse": [] })));
    assert_eq!(stored[0].content, text_in(&message, Dialect::Discord).expect("text"));
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_posts_the_question_twice() {
    let fake = Fake::new("unused-bot-token", &[]);
    let running = fake.serve().await;
    let hook = webhook(
        &format!("{}{}", running.url, fake.webhook_path()),
        Duration::from_millis(300),
    );
    fake.faults.lose_every(1, Duration::from_secs(1));
    let (id, message) = question("asked once");
    let first = hook.post(id, "ignored", &message).await;
    assert!(matches!(first, Err(ChatError::Unavailable(_))), "{first:?}");
    fake.faults.lose_every(0, Duration::ZERO);
    assert!(!hook.is_posted(id, "general").await.expect("a webhook can't look"));
    hook.post(id, "ignored", &message).await.expect("retry");
    // The chat shows the question twice: at least once, as declared, never claimed as exactly once.
    assert_eq!(fake.messages().len(), 2);
}

#[tokio::test]
async fn each_discord_webhook_failure_maps_to_what_the_consumer_should_do() {
    let fake = Fake::new("unused-bot-token", &[]);
    let running = fake.serve().await;
    let url = format!("{}{}", running.url, fake.webhook_path());
    let hook = webhook(&url, Duration::from_millis(500));
    let (id, message) = question("hello");

    fake.rate_limit(Some(1.25));
    let before = SystemTime::now();
    match hook.post(id, "ignored", &message).await {
        Err(ChatError::RateLimited { reset: Some(reset) }) => {
            let wait = reset.duration_since(before).expect("future");
            assert!(
                wait >= Duration::from_millis(1250) && wait < Duration::from_secs(3),
                "{wait:?}"
            );
        }
        other => panic!("expected RateLimited with X-RateLimit-Reset-After, got {other:?}"),
    }
    fake.rate_limit(None);

    fake.faults.fail_with(Some(503));
    let unavailable = hook.post(id, "ignored", &message).await;
    assert!(matches!(unavailable, Err(ChatError::Unavailable(_))), "{unavailable:?}");
    fake.faults.fail_with(Some(400));
    let rejected = hook.post(id, "ignored", &message).await;
    assert!(matches!(rejected, Err(ChatError::Rejected(_))), "{rejected:?}");
    fake.faults.fail_with(None);

    fake.faults.slow(Some(Duration::from_secs(2)));
    let slow = hook.post(id, "ignored", &message).await;
    assert!(
        matches!(&slow, Err(ChatError::Unavailable(m)) if m.contains("timed out")),
        "{slow:?}"
    );
    fake.faults.slow(None);

    // A deleted webhook (404, Unknown Webhook) and a wrong token (401, Invalid Webhook Token): fix the secret.
    let deleted = webhook(&format!("{}/api/webhooks/999/tok", running.url), Duration::from_secs(2));
    let result = deleted.post(id, "ignored", &message).await;
    assert!(matches!(result, Err(ChatError::Misconfigured(_))), "{result:?}");
    let wrong = webhook(&url.replace(fake.webhook_token(), "wrong"), Duration::from_secs(2));
    let result = wrong.post(id, "ignored", &message).await;
    assert!(matches!(result, Err(ChatError::Misconfigured(_))), "{result:?}");
}

#[tokio::test]
async fn the_webhook_url_is_in_no_error_and_no_debug_output() {
    let fake = Fake::new("unused-bot-token", &[]);
    let running = fake.serve().await;
    let hook = webhook(
        &format!("{}{}", running.url, fake.webhook_path()),
        Duration::from_millis(300),
    );
    let (id, message) = question("hello");
    let mut errors = Vec::new();
    for status in [400, 401, 403, 404, 429, 500] {
        fake.faults.fail_with(Some(status));
        errors.push(hook.post(id, "ignored", &message).await.expect_err("fails"));
    }
    fake.faults.fail_with(None);
    fake.faults.slow(Some(Duration::from_secs(1)));
    errors.push(hook.post(id, "ignored", &message).await.expect_err("times out"));
    drop(running);
    errors.push(hook.post(id, "ignored", &message).await.expect_err("refused"));
    for e in &errors {
        assert!(!format!("{e} {e:?}").contains(fake.webhook_token()), "{e:?}");
    }
    assert!(!format!("{hook:?}").contains(fake.webhook_token()));
}
