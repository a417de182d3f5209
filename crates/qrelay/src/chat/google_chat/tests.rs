//! The Google Chat adapter against `chat_fakes::google_chat`, a real HTTP server on loopback that checks the
//! service account's signed assertion and keeps messages by their client-chosen id.

use std::time::Duration;

use chat_fakes::google_chat::FakeGoogleChat;

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

async fn setup(timeout: Duration) -> (FakeGoogleChat, GoogleChat, String) {
    let fake = FakeGoogleChat::start().await;
    let space = fake.add_space("AAAArust101", true);
    let secret = ChatSecret::parse(&fake.secret_json().to_string()).expect("secret");
    let adapter = GoogleChat::new(
        http_client(timeout).expect("client"),
        &fake.url(),
        Arc::new(StaticSecret(secret)),
    );
    (fake, adapter, space)
}

/// What the consumer does with one question over SQS's deliveries: ask before posting again.
async fn deliver(adapter: &GoogleChat, id: QuestionId, space: &str, message: &ChatMessage) -> Delivery {
    let mut attempt = 1;
    loop {
        assert!(attempt <= 5, "question {id} still not delivered after 5 attempts");
        if attempt > 1 && adapter.is_posted(id, space).await.expect("is_posted") {
            return Delivery::AlreadyPosted;
        }
        match adapter.post(id, space, message).await {
            Ok(delivery) => return delivery,
            Err(_) => attempt += 1,
        }
    }
}

#[tokio::test]
async fn a_hundred_questions_are_stored_once_while_a_tenth_of_answers_are_lost() {
    let (fake, adapter, space) = setup(Duration::from_millis(400)).await;
    fake.state.faults.lose_every(10, Duration::from_secs(2));
    let mut ids = Vec::new();
    for n in 0..100 {
        let (id, message) = question(&format!("question {n}"));
        deliver(&adapter, id, &space, &message).await;
        ids.push(id);
    }
    let stored = fake.messages_in(&space);
    assert_eq!(stored.len(), 100, "each question stored once");
    for id in ids {
        let name = format!("{space}/messages/{}", message_id(id));
        assert_eq!(stored.iter().filter(|m| m.name == name).count(), 1, "{name}");
    }
    assert_eq!(fake.calls("token"), 1, "one access token, kept until it expires");
}

#[tokio::test]
async fn a_post_sent_again_is_already_there_and_is_posted_reads_it() {
    let (fake, adapter, space) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("once only");
    assert!(!adapter.is_posted(id, &space).await.expect("read"));
    assert_eq!(
        adapter.post(id, &space, &message).await.expect("post"),
        Delivery::Posted
    );
    // The same request again: Google answers the message it created for this requestId (a 200, nothing new).
    adapter.post(id, &space, &message).await.expect("again");
    assert!(adapter.is_posted(id, &space).await.expect("read"));
    assert_eq!(fake.messages_in(&space).len(), 1);
    let text = &fake.messages_in(&space)[0].text;
    assert!(text.contains("once only"), "{text}");
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_and_the_post_goes_through() {
    let (fake, adapter, space) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("first");
    adapter.post(id, &space, &message).await.expect("post");
    fake.expire_tokens();
    let (id, message) = question("after an hour");
    assert_eq!(
        adapter.post(id, &space, &message).await.expect("post"),
        Delivery::Posted
    );
    assert_eq!(fake.calls("token"), 2);
}

#[tokio::test]
async fn each_answer_is_classified_for_the_consumer() {
    let (fake, adapter, space) = setup(Duration::from_millis(500)).await;
    let outsider = fake.add_space("AAAAnotmember", false);
    let (id, message) = question("classified");

    let refused = adapter.post(id, &outsider, &message).await.expect_err("not a member");
    assert!(
        matches!(&refused, ChatError::Misconfigured(m) if m.contains("add the Chat app")),
        "{refused:?}"
    );
    let unknown = adapter
        .post(id, "spaces/AAAAnowhere", &message)
        .await
        .expect_err("no such space");
    assert!(
        matches!(&unknown, ChatError::Misconfigured(m) if m.contains("404")),
        "{unknown:?}"
    );
    let named = adapter
        .post(id, "rust-101", &message)
        .await
        .expect_err("not a space name");
    assert!(
        matches!(&named, ChatError::Misconfigured(m) if m.contains("spaces/<id>")),
        "{named:?}"
    );

    fake.rate_limit(true);
    let limited = adapter.post(id, &space, &message).await.expect_err("429");
    assert!(matches!(limited, ChatError::RateLimited { .. }), "{limited:?}");
    fake.rate_limit(false);

    fake.state.faults.fail_with(Some(503));
    let down = adapter.post(id, &space, &message).await.expect_err("503");
    assert!(matches!(down, ChatError::Unavailable(_)), "{down:?}");
    fake.state.faults.fail_with(None);

    fake.state.faults.slow(Some(Duration::from_secs(2)));
    let slow = adapter.post(id, &space, &message).await.expect_err("slow");
    assert!(matches!(slow, ChatError::Unavailable(_)), "{slow:?}");
    fake.state.faults.slow(None);
    // The slow create was stored: the next delivery finds it rather than posting twice.
    assert!(adapter.is_posted(id, &space).await.expect("read"));
    adapter.post(id, &space, &message).await.expect("again");
    assert_eq!(fake.messages_in(&space).len(), 1);
}

#[tokio::test]
async fn another_request_for_a_stored_message_id_is_refused_as_already_there() {
    // The same message id under another request id (a resend after a redeploy, say): 409, which the adapter
    // reports as already posted.
    let (fake, adapter, space) = setup(Duration::from_secs(2)).await;
    let (id, message) = question("stored under its message id");
    adapter.post(id, &space, &message).await.expect("post");
    let token = adapter.access_token(false).await.expect("token");
    let response = http_client(Duration::from_secs(2))
        .expect("client")
        .post(format!("{}/v1/{space}/messages", fake.url()))
        .bearer_auth(&token)
        .query(&[
            ("messageId", message_id(id)),
            ("requestId", "another-request".to_owned()),
        ])
        .json(&serde_json::json!({ "text": "again" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CONFLICT, "the message id is taken");
    assert_eq!(fake.messages_in(&space).len(), 1);
}

#[tokio::test]
async fn a_wrong_key_or_another_kinds_secret_is_the_instructors_to_fix() {
    let fake = FakeGoogleChat::start().await;
    let space = fake.add_space("AAAArust101", true);
    let (id, message) = question("never sent");
    let mut other_key = fake.secret_json();
    // A valid key of another account: the fake's public key does not match its signature.
    other_key["service_account"]["private_key"] =
        serde_json::Value::String("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into());
    for secret in [
        ChatSecret::parse(&other_key.to_string()).expect("secret"),
        ChatSecret::BotToken {
            bot_token: "xoxb-not-google".into(),
        },
    ] {
        let adapter = GoogleChat::new(
            http_client(Duration::from_secs(2)).expect("client"),
            &fake.url(),
            Arc::new(StaticSecret(secret)),
        );
        let refused = adapter.post(id, &space, &message).await.expect_err("refused");
        assert!(matches!(refused, ChatError::Misconfigured(_)), "{refused:?}");
    }
    assert!(fake.messages().is_empty());
}

#[test]
fn the_assertion_is_a_signed_jwt_for_the_chat_scope_and_names_no_secret() {
    let key = match ChatSecret::parse(
        &serde_json::json!({ "service_account": {
            "client_email": chat_fakes::google_chat::TEST_CLIENT_EMAIL,
            "private_key": chat_fakes::google_chat::TEST_PRIVATE_KEY_PEM,
        }})
        .to_string(),
    )
    .expect("secret")
    {
        ChatSecret::ServiceAccount { service_account } => service_account,
        other => panic!("{other:?}"),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let jwt = assertion(&key, TOKEN_URI, now).expect("signed");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("json");
    assert_eq!(
        claims,
        serde_json::json!({ "iss": chat_fakes::google_chat::TEST_CLIENT_EMAIL, "scope": SCOPE, "aud": TOKEN_URI,
                            "iat": 1_795_000_000u64, "exp": 1_795_003_600u64 })
    );
    assert!(!jwt.contains("PRIVATE"), "the key is not in the assertion");
    assert!(format!("{key:?}").contains("<redacted>"), "the key never reaches a log");
}
