//! The Teams Workflows adapter against `chat_fakes::teams`, a real HTTP server on loopback.

use std::time::{Duration, SystemTime};

use chat_fakes::teams::Teams as Fake;

use super::*;
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

fn adapter(url: &str, timeout: Duration) -> Teams {
    Teams::new(
        http_client(timeout).expect("client"),
        Arc::new(StaticSecret(ChatSecret::Webhook {
            webhook_url: url.to_owned(),
        })),
    )
}

async fn setup(timeout: Duration) -> (Arc<Fake>, chat_fakes::Running, Teams) {
    let fake = Fake::new();
    let running = fake.serve().await;
    let teams = adapter(&format!("{}{}", running.url, fake.webhook_path()), timeout);
    (fake, running, teams)
}

#[tokio::test]
async fn the_card_is_an_adaptive_card_the_workflow_posts() {
    let (fake, _running, teams) = setup(Duration::from_secs(2)).await;
    assert_eq!(teams.guarantee(), Guarantee::AtLeastOnceUnconfirmed);
    let (id, message) = question("what is a lifetime?");
    assert_eq!(
        teams.post(id, "ignored", &message).await.expect("post"),
        Delivery::Posted
    );
    let cards = fake.posted();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["type"], "AdaptiveCard");
    assert_eq!(cards[0]["version"], "1.4", "Workflows refuses cards above 1.4");
    let text: Vec<&str> = cards[0]["body"]
        .as_array()
        .expect("body")
        .iter()
        .map(|b| b["text"].as_str().expect("TextBlock text"))
        .collect();
    let expected = crate::chat::discord::text_in(&message, Dialect::Teams).expect("text");
    assert_eq!(text.join("\n\n"), expected);
}

#[tokio::test]
async fn a_202_does_not_mean_the_card_was_posted() {
    let (fake, _running, teams) = setup(Duration::from_secs(2)).await;
    fake.fail_in_flow(true);
    let (id, message) = question("lost inside the flow");
    // The trigger accepted it, so the adapter can only say "posted"…
    assert_eq!(
        teams.post(id, "ignored", &message).await.expect("post"),
        Delivery::Posted
    );
    // …though the flow failed and nothing reached the channel: hence AtLeastOnceUnconfirmed.
    assert_eq!((fake.accepted(), fake.posted().len()), (1, 0));
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_posts_the_card_twice() {
    let (fake, _running, teams) = setup(Duration::from_millis(300)).await;
    fake.faults.lose_every(1, Duration::from_secs(1));
    let (id, message) = question("asked once");
    let first = teams.post(id, "ignored", &message).await;
    assert!(matches!(first, Err(ChatError::Unavailable(_))), "{first:?}");
    fake.faults.lose_every(0, Duration::ZERO);
    // Nothing to look up: the consumer's check can't find it…
    assert!(!teams.is_posted(id, "general").await.expect("is_posted"));
    teams.post(id, "ignored", &message).await.expect("retry");
    // …and the question shows twice: at least once, as declared.
    assert_eq!(fake.posted().len(), 2);
}

#[tokio::test]
async fn each_failure_maps_to_what_the_consumer_should_do() {
    let (fake, running, teams) = setup(Duration::from_millis(500)).await;
    let (id, message) = question("hello");

    for (status, check) in [
        (
            400,
            (|e: &ChatError| matches!(e, ChatError::Rejected(_))) as fn(&ChatError) -> bool,
        ),
        (403, |e| matches!(e, ChatError::Misconfigured(_))),
        (500, |e| matches!(e, ChatError::Unavailable(_))),
        (502, |e| matches!(e, ChatError::Unavailable(_))),
    ] {
        fake.faults.fail_with(Some(status));
        let result = teams.post(id, "ignored", &message).await;
        assert!(result.as_ref().is_err_and(check), "{status}: {result:?}");
    }
    fake.faults.fail_with(None);

    fake.rate_limit(Some(3));
    let before = SystemTime::now();
    match teams.post(id, "ignored", &message).await {
        Err(ChatError::RateLimited { reset: Some(reset) }) => {
            let wait = reset.duration_since(before).expect("future");
            assert!(
                wait >= Duration::from_secs(3) && wait < Duration::from_secs(5),
                "{wait:?}"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    fake.rate_limit(None);

    fake.faults.slow(Some(Duration::from_secs(2)));
    let slow = teams.post(id, "ignored", &message).await;
    assert!(
        matches!(&slow, Err(ChatError::Unavailable(m)) if m.contains("timed out")),
        "{slow:?}"
    );
    fake.faults.slow(None);

    // A deleted flow: 404. A wrong signature: 401, even after reading the secret again.
    let gone = adapter(
        &format!("{}/workflows/ffff/triggers/manual/paths/invoke?sig=x", running.url),
        Duration::from_secs(2),
    );
    let result = gone.post(id, "ignored", &message).await;
    assert!(matches!(result, Err(ChatError::Misconfigured(_))), "{result:?}");
    let wrong_sig = fake.webhook_path().replace(fake.sig(), "not-the-signature");
    let refused = adapter(&format!("{}{wrong_sig}", running.url), Duration::from_secs(2));
    let result = refused.post(id, "ignored", &message).await;
    assert!(matches!(result, Err(ChatError::Unauthorized)), "{result:?}");
}

#[tokio::test]
async fn the_webhook_signature_is_in_no_error_and_no_debug_output() {
    let (fake, running, teams) = setup(Duration::from_millis(300)).await;
    let (id, message) = question("hello");
    let mut errors = Vec::new();
    for status in [400, 401, 403, 404, 429, 500] {
        fake.faults.fail_with(Some(status));
        errors.push(teams.post(id, "ignored", &message).await.expect_err("fails"));
    }
    fake.faults.fail_with(None);
    fake.faults.slow(Some(Duration::from_secs(1)));
    errors.push(teams.post(id, "ignored", &message).await.expect_err("times out"));
    drop(running);
    errors.push(teams.post(id, "ignored", &message).await.expect_err("refused"));
    for e in &errors {
        assert!(!format!("{e} {e:?}").contains(fake.sig()), "{e:?}");
    }
    assert!(!format!("{teams:?}").contains(fake.sig()));
}

#[test]
fn the_largest_question_fits_in_a_teams_card() {
    // 1800 three-byte characters, each escaped or not as the renderer decides: still within 28 KB.
    let (_, message) = question(&"€<".repeat(QuestionText::MAX_CHARS_LIMIT / 2));
    let body = body(&message).expect("fits");
    assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
}
