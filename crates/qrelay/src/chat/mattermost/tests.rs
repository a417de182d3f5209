//! The Mattermost adapter against `chat_fakes::mattermost`, a real HTTP server on loopback.

use std::sync::Mutex;
use std::time::Duration;

use chat_fakes::mattermost::Mattermost as Fake;

use super::*;
use crate::chat::http_client;
use crate::chat::secret::ChatSecret;
use crate::domain::{Question, QuestionText, RoomName};

const TOKEN: &str = "SECRETmattermostbottoken1234";
const GENERAL: &str = "engineering/general";
const RUST: &str = "engineering/rust-course";

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

async fn setup(timeout: Duration) -> (Arc<Fake>, chat_fakes::Running, Mattermost, Arc<Rotating>) {
    let fake = Fake::new(TOKEN, &[("engineering", "general"), ("engineering", "rust-course")]);
    let running = fake.serve().await;
    let secret = bot_secret(TOKEN);
    let adapter = Mattermost::new(http_client(timeout).expect("client"), &running.url, secret.clone());
    (fake, running, adapter, secret)
}

/// How often question `id` is stored in the fake (by its prop).
fn copies(fake: &Fake, id: QuestionId) -> usize {
    fake.posts()
        .iter()
        .filter(|p| p.props.get(ID_PROP).and_then(Value::as_str) == Some(id.to_string().as_str()))
        .count()
}

/// What the consumer does with one question over SQS's deliveries: ask before posting again.
async fn deliver(adapter: &Mattermost, id: QuestionId, channel: &str, message: &ChatMessage) -> Delivery {
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
        let channel = if n % 2 == 0 { GENERAL } else { RUST };
        if deliver(&adapter, id, channel, &message).await == Delivery::AlreadyPosted {
            settled += 1;
        }
        ids.push(id);
    }
    assert_eq!(settled, 10, "every lost answer was settled by finding the post");
    for id in &ids {
        assert_eq!(copies(&fake, *id), 1, "question {id}");
    }
    assert_eq!(fake.posts().len(), 100);
    assert_eq!(fake.calls("lookup"), 2, "each channel was looked up once");
}

#[tokio::test]
async fn without_the_check_a_lost_answer_means_a_duplicate() {
    // What the check prevents: Mattermost stores the same body twice.
    let (fake, running, _, _) = setup(Duration::from_millis(400)).await;
    let (id, message) = question("posted twice without a look");
    let channel_id = fake.channel_id("engineering", "general").expect("channel");
    fake.faults.lose_every(1, Duration::from_secs(2));
    let http = http_client(Duration::from_millis(400)).expect("client");
    let body =
        json!({"channel_id": channel_id, "message": text(&message).expect("text"), "props": {ID_PROP: id.to_string()}});
    for _ in 0..2 {
        let sent = http
            .post(format!("{}/api/v4/posts", running.url))
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

    let fresh = Mattermost::new(
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
    assert_eq!(fake.calls("create"), 1, "the redelivery posted nothing");
    assert!(first.is_posted(id, GENERAL).await.expect("is_posted"));
}

#[tokio::test]
async fn the_post_carries_the_channel_id_the_text_and_the_prop() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("what is a lifetime?");
    adapter.post(id, RUST, &message).await.expect("post");
    let channel_id = fake.channel_id("engineering", "rust-course").expect("channel");
    // A channel id in ROOMS is used as is.
    let (id2, _) = question("by id");
    adapter.post(id2, &channel_id, &message).await.expect("post by id");
    let posts = fake.posts();
    assert_eq!(posts[0].channel_id, channel_id);
    assert_eq!(posts[0].message, text(&message).expect("text"));
    assert_eq!(posts[0].props, json!({ "qrelay_id": id.to_string() }));
    assert_eq!(posts[1].channel_id, channel_id);
    assert_eq!(fake.calls("lookup"), 1);
    assert_eq!(adapter.guarantee(), Guarantee::CheckedRetry);
}

#[tokio::test]
async fn each_failure_maps_to_its_chat_error() {
    let (fake, _running, adapter, _) = setup(Duration::from_millis(300)).await;
    let (id, message) = question("a question");
    let (warm_up, _) = question("the channel is looked up and cached");
    adapter.post(warm_up, GENERAL, &message).await.expect("warm-up");

    let e = adapter
        .post(id, "engineering/nowhere", &message)
        .await
        .expect_err("404");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("not found")),
        "{e:?}"
    );
    fake.add_channel("engineering", "closed", false);
    let e = adapter.post(id, "engineering/closed", &message).await.expect_err("403");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("may not post")),
        "{e:?}"
    );
    fake.add_foreign_team_channel("sales", "general");
    let e = adapter.post(id, "sales/general", &message).await.expect_err("403 team");
    assert!(matches!(&e, ChatError::Misconfigured(_)), "{e:?}");
    let e = adapter.post(id, "general", &message).await.expect_err("no team");
    assert!(
        matches!(&e, ChatError::Misconfigured(m) if m.contains("team/channel")),
        "{e:?}"
    );

    fake.rate_limit(Some(30));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("429");
    let ChatError::RateLimited { reset: Some(reset) } = e else {
        panic!("expected a reset: {e:?}")
    };
    assert!(
        reset > SystemTime::now() + Duration::from_secs(20),
        "seconds from now, not a 1970 time"
    );
    fake.rate_limit(None);

    fake.faults.fail_with(Some(502));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("502");
    assert!(matches!(e, ChatError::Unavailable(_)), "{e:?}");
    fake.faults.fail_with(Some(400));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("400");
    assert!(matches!(e, ChatError::Rejected(_)), "{e:?}");
    // A 400 to the channel lookup is ROOMS' mistake: the question waits for the fix, not the dead-letter queue.
    let e = adapter.post(id, RUST, &message).await.expect_err("400 lookup");
    assert!(matches!(e, ChatError::Misconfigured(_)), "{e:?}");
    fake.faults.fail_with(None);
    assert_eq!(copies(&fake, id), 0, "nothing was stored by any refusal");

    // A slow answer: stored, but neither the answer nor the channel's posts came in time.
    fake.faults.slow(Some(Duration::from_secs(1)));
    let e = adapter.post(id, GENERAL, &message).await.expect_err("slow");
    assert!(matches!(e, ChatError::Unavailable(_)), "{e:?}");
    fake.faults.slow(None);
    assert!(
        adapter.is_posted(id, GENERAL).await.expect("is_posted"),
        "found once Mattermost answers again"
    );
}

#[tokio::test]
async fn a_reset_token_is_read_again_once_then_unauthorized() {
    let (fake, _running, adapter, secret) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("after the token was reset");
    adapter.post(id, GENERAL, &message).await.expect("first");
    fake.set_token("SECRETnewtoken");
    let (id2, _) = question("second");
    let e = adapter.post(id2, GENERAL, &message).await.expect_err("401");
    assert!(matches!(e, ChatError::Unauthorized), "{e:?}");
    *secret.0.lock().expect("lock") = ChatSecret::BotToken {
        bot_token: "SECRETnewtoken".into(),
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
    fake.set_token("other");
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("401"));
    fake.set_token(TOKEN);
    errors.push(
        adapter
            .post(id, "engineering/nowhere", &message)
            .await
            .expect_err("404"),
    );
    fake.faults.fail_with(Some(500));
    errors.push(adapter.post(id, GENERAL, &message).await.expect_err("500"));
    fake.faults.fail_with(None);
    fake.faults.slow(Some(Duration::from_secs(1)));
    errors.push(adapter.post(id, RUST, &message).await.expect_err("slow"));
    for e in &errors {
        assert!(!format!("{e} {e:?}").contains("SECRET"), "{e:?}");
    }
    assert!(!format!("{adapter:?}").contains("SECRET"));
}

#[tokio::test]
async fn what_reaches_mattermost_mentions_no_one() {
    let (fake, _running, adapter, _) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("@channel @all @here please");
    adapter.post(id, GENERAL, &message).await.expect("post");
    let stored = fake.posts().pop().expect("stored").message;
    for raw in ["@channel", "@all", "@here"] {
        assert!(!stored.contains(raw), "{raw} reached Mattermost as is: {stored}");
    }
}
