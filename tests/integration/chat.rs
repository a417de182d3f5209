//! The chat adapters on their own against the Rocket.Chat fake, over real HTTP: what each answer of the chat
//! becomes (posted, already posted, retry later, dead letter).

use std::sync::Arc;
use std::time::Duration;

use qrelay::chat::rocketchat::RocketChat;
use qrelay::chat::secret::{ChatSecret, StaticSecret};
use qrelay::chat::webhook::Webhook;
use qrelay::chat::{ChatError, ChatMessage, ChatPoster, Delivery, http_client};
use qrelay::domain::{Question, QuestionId, QuestionText, RoomName};
use rocketchat_fake::{FakeRocketChat, Mode};

fn message(text: &str) -> (QuestionId, ChatMessage) {
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse("general").expect("room"),
        text: QuestionText::parse(text, 1000).expect("text"),
        nickname: None,
        submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
    };
    let tz = jiff::tz::TimeZone::get("Asia/Tokyo").expect("tz");
    (question.id, ChatMessage::render(&question, &tz).expect("fits"))
}

fn rest(chat: &FakeRocketChat, timeout: Duration) -> RocketChat {
    let secret = ChatSecret::RocketChat {
        user_id: rocketchat_fake::USER_ID.into(),
        token: rocketchat_fake::TOKEN.into(),
    };
    RocketChat::new(
        http_client(timeout).unwrap(),
        &chat.url(),
        Arc::new(StaticSecret(secret)),
    )
}

#[tokio::test]
async fn the_rest_adapter_classifies_what_the_chat_answers() {
    let chat = FakeRocketChat::start().await;
    chat.add_channel("general");
    let poster = rest(&chat, Duration::from_millis(300));

    let (id, msg) = message("first");
    assert!(
        matches!(poster.post(id, "general", &msg).await, Ok(Delivery::Posted)),
        "200 passes"
    );
    assert!(
        matches!(poster.post(id, "general", &msg).await, Ok(Delivery::AlreadyPosted)),
        "the same id again"
    );

    let (id, msg) = message("second");
    chat.set_mode(Mode::Failing);
    assert!(
        matches!(poster.post(id, "general", &msg).await, Err(ChatError::Unavailable(_))),
        "500 fails, retryable"
    );
    chat.set_mode(Mode::Down);
    assert!(
        matches!(poster.post(id, "general", &msg).await, Err(ChatError::Unavailable(_))),
        "refused, retryable"
    );
    chat.set_mode(Mode::Up);
    assert!(
        matches!(poster.post(id, "nowhere", &msg).await, Err(ChatError::Misconfigured(_))),
        "unknown channel"
    );
    assert_eq!(chat.messages().len(), 1, "nothing stored by the failures");
}

#[tokio::test]
async fn the_webhook_adapter_posts_and_explains_a_wrong_url() {
    let chat = FakeRocketChat::start().await;
    let url = chat.add_webhook("general");
    let secret = ChatSecret::Webhook {
        webhook_url: url.clone(),
    };
    let poster = Webhook::new(
        http_client(Duration::from_secs(2)).unwrap(),
        Arc::new(StaticSecret(secret)),
    );

    let (id, msg) = message("via a webhook @all");
    assert!(matches!(poster.post(id, "general", &msg).await, Ok(Delivery::Posted)));
    let stored = chat.messages_in("general");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].via_webhook && stored[0].mentions.is_empty(), "{stored:?}");
    assert_eq!(
        stored[0].parse_urls,
        Some(false),
        "the webhook body turns link previews off"
    );

    chat.set_mode(Mode::Failing);
    assert!(
        matches!(poster.post(id, "general", &msg).await, Err(ChatError::Unavailable(_))),
        "500 is retryable"
    );
    chat.set_mode(Mode::Up);

    let wrong = ChatSecret::Webhook {
        webhook_url: format!("{}/hooks/nope/nope", chat.url()),
    };
    let poster = Webhook::new(
        http_client(Duration::from_secs(2)).unwrap(),
        Arc::new(StaticSecret(wrong)),
    );
    assert!(
        matches!(poster.post(id, "general", &msg).await, Err(ChatError::Misconfigured(_))),
        "404 says: check the URL"
    );
}
