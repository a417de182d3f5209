//! The fake's contract, exercised over real HTTP with reqwest, the client qrelay itself uses.
//!
//! qrelay's tests trust that the fake answers like Rocket.Chat; these tests are what that trust rests on. Most run
//! on tokio's default current-thread runtime on purpose: it is where a `Mode::Down` that closed its socket lazily
//! would let the next connection through.

use std::error::Error as _;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::{FakeRocketChat, Mode, TOKEN, USER_ID};

const CHANNEL: &str = "questions";

/// A client that ignores proxy variables (the fake is on loopback) and keeps connections alive like qrelay's.
fn client() -> Client {
    install_crypto();
    Client::builder().no_proxy().build().expect("building a reqwest client")
}

/// reqwest is built without a default crypto provider in this workspace (qrelay installs ring, like this).
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn authed(request: RequestBuilder) -> RequestBuilder {
    request.header("X-User-Id", USER_ID).header("X-Auth-Token", TOKEN)
}

async fn start_with_channel() -> (FakeRocketChat, String) {
    let chat = FakeRocketChat::start().await;
    let rid = chat.add_channel(CHANNEL);
    (chat, rid)
}

/// Posts `body` to `chat.sendMessage` with valid credentials and returns the status and JSON body.
async fn send(client: &Client, chat: &FakeRocketChat, body: Value) -> (u16, Value) {
    let request = authed(client.post(format!("{}/api/v1/chat.sendMessage", chat.url()))).json(&body);
    status_and_json(request.send().await.expect("sending chat.sendMessage")).await
}

async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn is_connection_refused(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

#[tokio::test]
async fn api_without_credentials_or_with_a_wrong_token_is_401() {
    let (chat, _) = start_with_channel().await;
    let url = format!("{}/api/v1/rooms.info?roomName={CHANNEL}", chat.url());
    let cases = [
        ("no headers", client().get(&url)),
        ("no token", client().get(&url).header("X-User-Id", USER_ID)),
        (
            "wrong token",
            client()
                .get(&url)
                .header("X-User-Id", USER_ID)
                .header("X-Auth-Token", "nope"),
        ),
        (
            "wrong user",
            client()
                .get(&url)
                .header("X-User-Id", "someone")
                .header("X-Auth-Token", TOKEN),
        ),
    ];
    for (case, request) in cases {
        let (status, body) = status_and_json(request.send().await.expect("request")).await;
        assert_eq!(status, 401, "{case}: status");
        assert_eq!(
            body,
            json!({"status": "error", "message": "You must be logged in to do this."}),
            "{case}: body"
        );
    }
}

#[tokio::test]
async fn rotated_token_replaces_the_old_one() {
    let (chat, _) = start_with_channel().await;
    let url = format!("{}/api/v1/rooms.info?roomName={CHANNEL}", chat.url());
    chat.rotate_token("fresh-token");
    let old = authed(client().get(&url)).send().await.expect("request with old token");
    assert_eq!(old.status(), 401, "the revoked token is refused");
    let new = client()
        .get(&url)
        .header("X-User-Id", USER_ID)
        .header("X-Auth-Token", "fresh-token");
    assert_eq!(
        new.send().await.expect("request with new token").status(),
        200,
        "the new token is accepted"
    );
}

#[tokio::test]
async fn api_info_needs_no_credentials() {
    let chat = FakeRocketChat::start().await;
    let (status, body) = status_and_json(
        client()
            .get(format!("{}/api/info", chat.url()))
            .send()
            .await
            .expect("the fake answers"),
    )
    .await;
    assert_eq!(
        (status, body["success"].clone()),
        (200, json!(true)),
        "api/info answers without auth: {body}"
    );
}

#[tokio::test]
async fn rooms_info_resolves_a_known_name_and_rejects_an_unknown_one() {
    let (chat, rid) = start_with_channel().await;
    assert_eq!(
        chat.add_channel(&format!("#{CHANNEL}")),
        rid,
        "add_channel is idempotent and ignores '#'"
    );
    let lookup = |name: &str| {
        authed(
            client()
                .get(format!("{}/api/v1/rooms.info", chat.url()))
                .query(&[("roomName", name)]),
        )
    };

    let (status, body) = status_and_json(lookup(CHANNEL).send().await.expect("the fake answers")).await;
    assert_eq!(status, 200, "known room: {body}");
    assert_eq!(
        body,
        json!({"room": {"_id": rid, "name": CHANNEL, "t": "c"}, "success": true}),
        "known room body"
    );

    let (status, body) = status_and_json(lookup("nowhere").send().await.expect("the fake answers")).await;
    assert_eq!(
        (status, &body["errorType"]),
        (400, &json!("error-room-not-found")),
        "unknown room: {body}"
    );
}

#[tokio::test]
async fn sent_message_is_stored_and_found_by_get_message() {
    let (chat, rid) = start_with_channel().await;
    let message =
        json!({"_id": "qrelay-1", "rid": rid, "msg": "Why @\u{200B}all?", "alias": "Anonymous", "emoji": ":question:"});

    let (status, body) = send(&client(), &chat, json!({"message": message, "previewUrls": []})).await;
    assert_eq!(status, 200, "send succeeds: {body}");
    assert_eq!(body["message"]["_id"], "qrelay-1", "the client's _id is kept");
    assert_eq!(body["message"]["u"]["_id"], USER_ID, "posted as the bot");
    assert!(
        body["message"]["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "ts is an ISO string: {body}"
    );

    let found = authed(
        client()
            .get(format!("{}/api/v1/chat.getMessage", chat.url()))
            .query(&[("msgId", "qrelay-1")]),
    );
    let (status, found) = status_and_json(found.send().await.expect("the fake answers")).await;
    assert_eq!(
        (status, &found["message"]),
        (200, &body["message"]),
        "getMessage returns the same message"
    );

    let stored = chat.messages_in(CHANNEL);
    assert_eq!(stored.len(), 1, "one message stored: {stored:?}");
    assert_eq!(stored[0].msg, "Why @\u{200B}all?", "text stored verbatim");
    assert_eq!(stored[0].alias.as_deref(), Some("Anonymous"), "alias stored");
    assert_eq!(stored[0].preview_urls, Some(vec![]), "previewUrls stored");
    assert!(stored[0].mentions.is_empty(), "a neutralised @all mentions nobody");
    assert!(!stored[0].via_webhook, "not a webhook post");
}

#[tokio::test]
async fn get_message_of_an_unknown_id_is_400() {
    let chat = FakeRocketChat::start().await;
    let request = authed(
        client()
            .get(format!("{}/api/v1/chat.getMessage", chat.url()))
            .query(&[("msgId", "nope")]),
    );
    let (status, body) = status_and_json(request.send().await.expect("the fake answers")).await;
    assert_eq!((status, body), (400, json!({"success": false})), "not posted");
}

#[tokio::test]
async fn message_without_id_gets_a_generated_one_and_mentions_are_recorded() {
    let (chat, rid) = start_with_channel().await;
    let (status, body) = send(&client(), &chat, json!({"message": {"rid": rid, "msg": "hi @alice"}})).await;
    assert_eq!(status, 200, "sent: {body}");
    let stored = chat.messages();
    assert_eq!(
        body["message"]["_id"].as_str(),
        Some(stored[0].id.as_str()),
        "generated _id returned"
    );
    assert_eq!(stored[0].id.len(), 17, "generated _id looks like Meteor's");
    assert_eq!(stored[0].mentions, ["alice"], "user mentions are allowed and recorded");
    assert_eq!(stored[0].preview_urls, None, "no previewUrls in the request");
}

#[tokio::test]
async fn reused_id_is_refused_with_an_odd_400_and_stores_nothing() {
    let (chat, rid) = start_with_channel().await;
    let client = client();
    let first = send(
        &client,
        &chat,
        json!({"message": {"_id": "dup", "rid": rid, "msg": "first"}}),
    )
    .await;
    assert_eq!(first.0, 200, "first send: {first:?}");
    let (status, body) = send(
        &client,
        &chat,
        json!({"message": {"_id": "dup", "rid": rid, "msg": "second"}}),
    )
    .await;
    assert_eq!(status, 400, "second send: {body}");
    assert_eq!(
        body["error"], "Cannot read properties of undefined (reading 'starred')",
        "Rocket.Chat's odd text"
    );
    let stored = chat.messages();
    assert_eq!(
        (stored.len(), stored[0].msg.as_str()),
        (1, "first"),
        "only the first is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_with_the_same_id_store_exactly_one() {
    let (chat, rid) = start_with_channel().await;
    let url = format!("{}/api/v1/chat.sendMessage", chat.url());
    // Spawned, so that the requests really run in parallel on both worker threads.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let request = authed(client().post(&url))
                .json(&json!({"message": {"_id": "race", "rid": rid, "msg": i.to_string()}}));
            tokio::spawn(async move { request.send().await.expect("sending").status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("send task"));
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "exactly one success: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 400).count(),
        9,
        "the others are refused: {statuses:?}"
    );
    assert_eq!(chat.messages().len(), 1, "exactly one stored");
}

#[tokio::test]
async fn mention_all_or_here_is_refused_and_stores_nothing() {
    let (chat, rid) = start_with_channel().await;
    let client = client();
    for text in ["@all", "hey @here!", "first line\n@all", ">@here", "```\n@all\n```"] {
        let (status, body) = send(&client, &chat, json!({"message": {"rid": rid, "msg": text}})).await;
        assert_eq!(status, 400, "{text:?} is refused: {body}");
        assert_eq!(body["errorType"], "error-action-not-allowed", "{text:?}: error type");
    }
    assert_eq!(chat.messages(), vec![], "nothing stored");
}

#[tokio::test]
async fn text_that_only_looks_like_mention_all_is_accepted() {
    let (chat, rid) = start_with_channel().await;
    let client = client();
    for text in [
        "@ all",
        "a@all.com",
        "@allison",
        "@\u{200B}here",
        "\u{FF20}all",
        "`@all`",
    ] {
        let (status, body) = send(&client, &chat, json!({"message": {"rid": rid, "msg": text}})).await;
        assert_eq!(status, 200, "{text:?} is accepted: {body}");
    }
    let everyone = chat
        .messages()
        .into_iter()
        .filter(|m| m.mentions.iter().any(|n| n == "all" || n == "here"));
    assert_eq!(everyone.count(), 0, "none of them mentions everyone");
}

#[tokio::test]
async fn size_limit_is_5000_utf16_code_units_not_characters() {
    let (chat, rid) = start_with_channel().await;
    let client = client();
    // U+1F600 is one char but two UTF-16 code units.
    let cases = [
        ("2500 emoji = 5000 units", "😀".repeat(2500), 200),
        ("2500 emoji + 1 = 5001 units", format!("{}a", "😀".repeat(2500)), 400),
        (
            "4999 + 1 emoji = 5000 chars but 5001 units",
            format!("{}😀", "a".repeat(4999)),
            400,
        ),
    ];
    for (case, text, expected) in cases {
        let (status, body) = send(&client, &chat, json!({"message": {"rid": rid, "msg": text}})).await;
        assert_eq!(status, expected, "{case}: {body}");
        if expected == 400 {
            assert_eq!(body["errorType"], "error-message-size-exceeded", "{case}: error type");
        }
    }
    assert_eq!(chat.messages().len(), 1, "only the message within the limit is stored");
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_error_types() {
    let (chat, rid) = start_with_channel().await;
    let url = format!("{}/api/v1/chat.sendMessage", chat.url());
    let cases = [
        ("not JSON", "{".to_owned(), "invalid-params"),
        ("no message", json!({"msg": "x"}).to_string(), "invalid-params"),
        ("no rid", json!({"message": {"msg": "x"}}).to_string(), "invalid-params"),
        (
            "unknown rid",
            json!({"message": {"rid": "nope", "msg": "x"}}).to_string(),
            "error-invalid-room",
        ),
    ];
    for (case, body, error_type) in cases {
        let request = authed(client().post(&url))
            .header("Content-Type", "application/json")
            .body(body);
        let (status, body) = status_and_json(request.send().await.expect("the fake answers")).await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some(error_type)),
            "{case}: {body}"
        );
    }
    assert!(!rid.is_empty() && chat.messages().is_empty(), "nothing stored");
}

#[tokio::test]
async fn down_refuses_connections_and_up_serves_again_on_the_same_url() {
    let chat = FakeRocketChat::start().await;
    let url = format!("{}/api/info", chat.url());

    chat.set_mode(Mode::Down);
    // No await between set_mode and the connect: the socket must already be closed.
    let error = client().get(&url).send().await.expect_err("no server while down");
    assert!(
        error.is_connect() && is_connection_refused(&error),
        "connection refused: {error:?}"
    );
    assert_eq!(chat.mode(), Mode::Down, "mode reads back");

    chat.set_mode(Mode::Up);
    let response = client().get(&url).send().await.expect("served again after Up");
    assert_eq!(response.status(), 200, "same URL works again");
}

#[tokio::test]
async fn keep_alive_connection_from_before_down_is_cut() {
    let chat = FakeRocketChat::start().await;
    let client = client();
    let url = format!("{}/api/info", chat.url());
    assert_eq!(
        client.get(&url).send().await.expect("the fake answers").status(),
        200,
        "warm up a pooled connection"
    );

    chat.set_mode(Mode::Down);
    // Give the client a moment to notice the close, as a real client between two messages would.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = client
        .get(&url)
        .send()
        .await
        .expect_err("the pooled connection is not served while down");
    assert!(
        error.is_connect(),
        "the client had to reconnect and was refused: {error:?}"
    );

    chat.set_mode(Mode::Up);
    assert_eq!(
        client.get(&url).send().await.expect("the fake answers").status(),
        200,
        "the same client works after Up"
    );
}

#[tokio::test]
async fn failing_answers_500_everywhere_and_stores_nothing() {
    let (chat, rid) = start_with_channel().await;
    let hook = chat.add_webhook(CHANNEL);
    chat.set_mode(Mode::Failing);

    let (status, body) = send(&client(), &chat, json!({"message": {"rid": rid, "msg": "lost"}})).await;
    assert_eq!(status, 500, "sendMessage fails: {body}");
    assert_eq!(
        body,
        json!({"success": false, "error": "Internal server error"}),
        "500 body"
    );
    let (status, _) = status_and_json(
        client()
            .post(&hook)
            .json(&json!({"text": "lost"}))
            .send()
            .await
            .expect("the fake answers"),
    )
    .await;
    assert_eq!(status, 500, "webhook fails");
    assert_eq!(
        client()
            .get(format!("{}/api/info", chat.url()))
            .send()
            .await
            .expect("the fake answers")
            .status(),
        500,
        "info fails"
    );
    assert_eq!(chat.messages(), vec![], "nothing stored");
}

#[tokio::test]
async fn slow_stores_the_message_although_the_client_timed_out() {
    let (chat, rid) = start_with_channel().await;
    chat.set_mode(Mode::Slow(Duration::from_millis(500)));
    install_crypto();
    let impatient = Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("building a client with a timeout");

    let request = authed(impatient.post(format!("{}/api/v1/chat.sendMessage", chat.url())));
    let error = request
        .json(&json!({"message": {"_id": "slow-1", "rid": rid, "msg": "hi"}}))
        .send()
        .await;
    assert!(
        error.as_ref().is_err_and(reqwest::Error::is_timeout),
        "client times out: {error:?}"
    );
    assert_eq!(chat.messages().len(), 1, "the message was stored anyway");
    assert_eq!(
        chat.requests().last().map(|r| r.status),
        Some(200),
        "the fake recorded what it was about to send"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_reset_in_epoch_millis_until_the_reset() {
    let (chat, rid) = start_with_channel().await;
    let hook = chat.add_webhook(CHANNEL);
    // Under a second away, so the body says 1 second even on a loaded machine.
    let reset = SystemTime::now() + Duration::from_millis(900);
    chat.rate_limit_until(reset);

    let request = authed(client().post(format!("{}/api/v1/chat.sendMessage", chat.url())));
    let response = request
        .json(&json!({"message": {"rid": rid, "msg": "hi"}}))
        .send()
        .await
        .expect("the fake answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    };
    let reset_ms = reset
        .duration_since(UNIX_EPOCH)
        .expect("reset after 1970")
        .as_millis()
        .to_string();
    assert_eq!(response.status(), 429, "limited");
    assert_eq!(header("x-ratelimit-limit").as_deref(), Some("10"), "limit header");
    assert_eq!(
        header("x-ratelimit-remaining").as_deref(),
        Some("0"),
        "remaining header"
    );
    assert_eq!(
        header("x-ratelimit-reset"),
        Some(reset_ms),
        "reset is absolute epoch milliseconds"
    );
    assert_eq!(header("retry-after"), None, "Rocket.Chat sends no Retry-After");
    let body: Value = response.json().await.expect("a JSON body");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("You must wait 1 seconds") && error.ends_with("[error-too-many-requests]"),
        "{body}"
    );
    let webhook = client()
        .post(&hook)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(webhook.status(), 429, "webhooks are limited too");
    let lookup = authed(client().get(format!("{}/api/v1/rooms.info?roomName={CHANNEL}", chat.url())));
    assert_eq!(
        lookup.send().await.expect("the fake answers").status(),
        200,
        "rooms.info is not a chat.* endpoint"
    );

    tokio::time::sleep(reset.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let (status, body) = send(&client(), &chat, json!({"message": {"rid": rid, "msg": "hi"}})).await;
    assert_eq!(status, 200, "served after the reset: {body}");
}

#[tokio::test]
async fn webhook_with_slash_and_plus_in_its_token_posts_to_its_channel() {
    let chat = FakeRocketChat::start().await;
    let hook = chat.add_webhook("#announcements");
    let token = hook
        .rsplit_once("/hooks/")
        .map(|(_, rest)| rest.split_once('/').expect("integration id, then token").1)
        .expect("a /hooks/ URL");
    assert!(
        token.contains('/') && token.contains('+'),
        "token has '/' and '+': {hook}"
    );

    let payload = json!({"text": "@all hello", "alias": "Anonymous"});
    let (status, body) = status_and_json(
        client()
            .post(&hook)
            .json(&payload)
            .send()
            .await
            .expect("the fake answers"),
    )
    .await;
    assert_eq!((status, body), (200, json!({"success": true})), "webhook accepted");
    let stored = chat.messages_in("announcements");
    assert_eq!(stored.len(), 1, "stored in the webhook's channel: {stored:?}");
    assert!(stored[0].via_webhook, "marked as a webhook post");
    assert_eq!(stored[0].mentions, ["all"], "a webhook may mention all; it is recorded");
    assert_eq!(stored[0].alias.as_deref(), Some("Anonymous"), "alias stored");
}

#[tokio::test]
async fn webhook_with_a_wrong_token_or_id_is_404() {
    let chat = FakeRocketChat::start().await;
    let hook = chat.add_webhook(CHANNEL);
    let (base, token) = hook.rsplit_once('+').expect("a token with '+'");
    let wrong_token = format!("{base}+x{token}");
    let wrong_id = hook.replacen("/hooks/", "/hooks/x", 1);
    for (case, url) in [("wrong token", wrong_token), ("wrong id", wrong_id)] {
        let (status, body) = status_and_json(
            client()
                .post(&url)
                .json(&json!({"text": "hi"}))
                .send()
                .await
                .expect("the fake answers"),
        )
        .await;
        assert_eq!(status, 404, "{case}: {body}");
        assert_eq!(
            body["error"], "Invalid integration id or token provided.",
            "{case}: body"
        );
    }
    assert_eq!(chat.messages(), vec![], "nothing stored");
}

#[tokio::test]
async fn every_request_is_recorded_with_the_status_answered() {
    let (chat, rid) = start_with_channel().await;
    let client = client();
    let url = format!("{}/api/v1/chat.sendMessage", chat.url());
    let body = json!({"message": {"rid": rid, "msg": "hi"}});
    client
        .get(format!("{}/api/info", chat.url()))
        .send()
        .await
        .expect("the fake answers");
    chat.clear_requests();

    client.post(&url).json(&body).send().await.expect("the fake answers");
    send(&client, &chat, body.clone()).await;
    chat.rate_limit_until(SystemTime::now() + Duration::from_secs(60));
    send(&client, &chat, body.clone()).await;
    chat.set_mode(Mode::Failing);
    client
        .get(format!("{}/api/v1/rooms.info?roomName=x", chat.url()))
        .send()
        .await
        .expect("the fake answers");

    let requests = chat.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    let send_path = "/api/v1/chat.sendMessage";
    let expected = [
        ("POST", send_path, 401),
        ("POST", send_path, 200),
        ("POST", send_path, 429),
        ("GET", "/api/v1/rooms.info", 500),
    ];
    assert_eq!(
        seen, expected,
        "requests in arrival order, without query strings, with their statuses"
    );
    assert!(
        requests.windows(2).all(|w| w[0].at <= w[1].at),
        "arrival times are ordered"
    );
}

#[tokio::test]
async fn dropping_the_fake_stops_the_server() {
    let chat = FakeRocketChat::start().await;
    let url = format!("{}/api/info", chat.url());
    drop(chat);
    let error = client().get(&url).send().await.expect_err("nothing listens after drop");
    assert!(is_connection_refused(&error), "connection refused: {error:?}");
}
