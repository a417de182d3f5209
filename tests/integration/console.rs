//! The instructor's console end to end against moto: the real DynamoDB store, a Cognito user pool (the first
//! login's new-password challenge and a token whose issuer and audience the console checks), the real intake and
//! consumer handlers with SNS and SQS, and the Rocket.Chat fake.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use qrelay::chat::Guarantee;
use qrelay::chat::rocketchat::message_id;
use qrelay::console::{ChatInfo, Console, ConsoleAuth};
use qrelay::consumer::Control;
use qrelay::control::{CachedRooms, ControlStore, DynamoStore, HoldReason, flood_notice_id};
use qrelay::domain::{Limits, Question, QuestionId, QuestionMessage, QuestionText, RoomName, Rooms};
use qrelay::intake::Intake;
use qrelay::publish::{QuestionPublisher, SnsPublisher};
use qrelay::redrive::{CopyMover, NativeMover, Redrive, RedriveMode};
use serde_json::{Value, json};

use crate::support::pipeline::Pipeline;

const FLOOD_THRESHOLD: u32 = 20;

/// Cognito's JSON API as the console page calls it (no SDK): `fetch` with `X-Amz-Target`. moto answers the
/// administrator's calls the same way without checking signatures.
async fn cognito(endpoint: &str, action: &str, body: Value) -> Value {
    let response = qrelay::chat::http_client(Duration::from_secs(10))
        .expect("client")
        .post(format!("{endpoint}/"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", format!("AWSCognitoIdentityProviderService.{action}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "{action}: {status} {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The claims of a JWT, as API Gateway's authorizer passes them on once it verified the token: every value a
/// string (`"exp": "1795488526"`).
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url");
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).expect("claims");
    claims
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, Value::String(s)),
            other => (k, Value::String(other.to_string())),
        })
        .collect()
}

/// A user pool with one admin-created instructor, signed in for the first time: returns (issuer, client id, the
/// ID token's claims).
async fn first_login(endpoint: &str) -> (String, String, Value) {
    let pool = cognito(
        endpoint,
        "CreateUserPool",
        json!({ "PoolName": "qrelay-instructors", "UsernameAttributes": ["email"],
                "AdminCreateUserConfig": { "AllowAdminCreateUserOnly": true } }),
    )
    .await;
    let pool_id = pool["UserPool"]["Id"].as_str().expect("pool id").to_owned();
    let client = cognito(
        endpoint,
        "CreateUserPoolClient",
        json!({ "UserPoolId": pool_id, "ClientName": "console", "GenerateSecret": false,
                "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"] }),
    )
    .await;
    let client_id = client["UserPoolClient"]["ClientId"]
        .as_str()
        .expect("client id")
        .to_owned();
    cognito(
        endpoint,
        "AdminCreateUser",
        json!({ "UserPoolId": pool_id, "Username": "sensei@example.com", "TemporaryPassword": "Temporary-Pass-1!",
                "UserAttributes": [{ "Name": "email", "Value": "sensei@example.com" }] }),
    )
    .await;
    let started = cognito(
        endpoint,
        "InitiateAuth",
        json!({ "ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": { "USERNAME": "sensei@example.com", "PASSWORD": "Temporary-Pass-1!" } }),
    )
    .await;
    assert_eq!(started["ChallengeName"], "NEW_PASSWORD_REQUIRED", "{started}");
    let done = cognito(
        endpoint,
        "RespondToAuthChallenge",
        json!({ "ClientId": client_id, "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": started["Session"],
                "ChallengeResponses": { "USERNAME": "sensei@example.com", "NEW_PASSWORD": "A-new-long-passw0rd!" } }),
    )
    .await;
    let token = done["AuthenticationResult"]["IdToken"].as_str().expect("an ID token");
    (
        format!("https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"),
        client_id,
        claims_of(token),
    )
}

/// An API Gateway v2 request to the console API carrying `claims` as the JWT authorizer passes them.
fn api(method: &str, path: &str, body: Option<Value>, claims: &Value) -> Request {
    let mut event: Value =
        serde_json::from_str(&qrelay_testkit::samples::event("console-overview.json")).expect("json");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims.clone();
    if let Some(body) = body {
        event["body"] = body.to_string().into();
    }
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("JSON")
}

async fn call(console: &Console, method: &str, path: &str, body_json: Option<Value>, claims: &Value) -> (u16, Value) {
    let response = console.handle(api(method, path, body_json, claims)).await;
    (response.status().as_u16(), body(&response))
}

/// A question in `room` submitted at `at` (a fixed minute, so a flood can't straddle two).
fn question(room: &str, text: &str, at: &str) -> QuestionMessage {
    QuestionMessage::from(&Question {
        id: QuestionId::new_random(),
        room: RoomName::parse(room).expect("room"),
        text: QuestionText::parse(text, 1000).expect("text"),
        nickname: None,
        submitted_at: at.parse().expect("time"),
    })
}

/// A JSON post to the intake's `/questions`, as the form's script sends it.
fn post_question(room: &str, text: &str) -> Request {
    let mut event: Value =
        serde_json::from_str(&qrelay_testkit::samples::event("intake-post-json.json")).expect("json");
    event["body"] = json!({ "room": room, "text": text }).to_string().into();
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

#[tokio::test]
async fn the_console_pauses_reviews_approves_once_stops_a_flood_and_redrives() {
    let pipeline = Pipeline::start().await;
    let endpoint = pipeline._moto.endpoint.clone();
    let sdk = pipeline._moto.sdk_config().await;
    let table = qrelay_testkit::world::create_control_table(&sdk, "qrelay-control")
        .await
        .expect("table");
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let pipeline = pipeline.with_control(Control {
        // Uncached, so each step sees the last switch at once (deployed: within 10 s).
        rooms: Arc::new(CachedRooms::new(store.clone(), Duration::ZERO)),
        flood_threshold: FLOOD_THRESHOLD,
        held_for: Duration::from_secs(14 * 86_400),
        keep_delivered_for: Some(Duration::from_secs(30 * 86_400)),
    });
    let rooms = Rooms::parse("general,rust-101=rust-course").expect("rooms");
    let publisher = Arc::new(SnsPublisher::new(
        pipeline.world.sns.clone(),
        pipeline.world.topic_arn.clone(),
    ));
    let intake = Intake::new(rooms.clone(), Limits::default(), publisher.clone())
        .with_control(Arc::new(CachedRooms::new(store.clone(), Duration::ZERO)));
    let queues = pipeline.world.redrive_queues();
    let (issuer, client_id, claims) = first_login(&endpoint).await;
    assert_eq!(claims["iss"], issuer.as_str(), "the ID token names the pool");
    assert_eq!(claims["aud"], client_id.as_str(), "and the console's app client");
    let console = Console::new(
        rooms,
        store.clone(),
        publisher.clone(),
        Arc::new(Redrive::new(
            queues.clone(),
            CopyMover(queues.clone()),
            NativeMover(queues),
            RedriveMode::Copy,
        )),
        ChatInfo {
            label: "Rocket.Chat",
            guarantee: Guarantee::ExactlyOnce,
        },
        FLOOD_THRESHOLD,
        ConsoleAuth::Jwt {
            issuer: issuer.clone(),
            audience: client_id.clone(),
        },
    );

    // Another pool's token (or none) gets nothing.
    let mut forged = claims.clone();
    forged["iss"] = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other".into();
    assert_eq!(
        call(&console, "GET", "/instructor/api/overview", None, &forged).await.0,
        401
    );
    assert_eq!(
        call(&console, "GET", "/instructor/api/overview", None, &json!({}))
            .await
            .0,
        401
    );

    // Paused: the form refuses, nothing is published.
    let (status, answer) = call(
        &console,
        "PUT",
        "/instructor/api/rooms/general",
        Some(json!({ "state": "paused" })),
        &claims,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let refused = intake.handle(post_question("general", "is anyone there?")).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(body(&refused)["error"]["code"], "room_paused");
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (0, 0),
        "nothing was published"
    );

    // Review: both questions are held, nothing posted.
    call(
        &console,
        "PUT",
        "/instructor/api/rooms/general",
        Some(json!({ "state": "review" })),
        &claims,
    )
    .await;
    for text in ["approve me", "reject me"] {
        let accepted = intake.handle(post_question("general", text)).await;
        assert_eq!(accepted.status(), 202);
    }
    pipeline.drain(10).await;
    assert!(
        pipeline.chat.messages_in("general").is_empty(),
        "nothing posted under review"
    );
    let (_, overview) = call(&console, "GET", "/instructor/api/overview", None, &claims).await;
    assert_eq!(overview["instructor"], "sensei@example.com");
    assert_eq!(overview["rooms"][0]["state"], "review");
    let held = overview["held"].as_array().expect("held").clone();
    assert_eq!(held.len(), 2, "{overview}");
    let id_of = |text: &str| {
        held.iter()
            .find(|h| h["text"] == text)
            .and_then(|h| h["id"].as_str())
            .expect("held question")
            .to_owned()
    };
    let (approve_id, reject_id) = (id_of("approve me"), id_of("reject me"));

    // Two instructors approve at once, twice each; the chat is down for the first delivery.
    pipeline.chat.set_mode(rocketchat_fake::Mode::Down);
    let approve = format!("/instructor/api/rooms/general/held/{approve_id}/approve");
    let approvals =
        futures_util::future::join_all((0..4).map(|_| call(&console, "POST", &approve, None, &claims))).await;
    for (status, answer) in &approvals {
        assert_eq!(
            (*status, answer["status"].as_str()),
            (200, Some("approved")),
            "{answer}"
        );
    }
    let reject = format!("/instructor/api/rooms/general/held/{reject_id}/reject");
    assert_eq!(call(&console, "POST", &reject, None, &claims).await.0, 200);
    assert_eq!(
        call(&console, "POST", &reject, None, &claims).await.0,
        200,
        "rejecting twice is fine"
    );
    let (status, answer) = call(
        &console,
        "POST",
        &approve.replace(&approve_id, &reject_id),
        None,
        &claims,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("already_rejected"))
    );
    pipeline.poll().await;
    assert!(pipeline.chat.messages().is_empty(), "the chat is down");
    pipeline.chat.set_mode(rocketchat_fake::Mode::Up);
    pipeline.fast_forward().await;
    pipeline.drain(10).await;
    let posted = pipeline.chat.messages_in("general");
    let approve_qid: QuestionId = serde_json::from_value(json!(approve_id)).expect("id");
    assert_eq!(posted.len(), 1, "approved four times, posted once: {posted:?}");
    assert_eq!(posted[0].id, message_id(approve_qid), "with its usual message id");
    assert!(posted[0].msg.contains("approve me"));

    // A flood: 30 distinct questions in one minute in an open room; the rest past 20 are held, one notice.
    call(
        &console,
        "PUT",
        "/instructor/api/rooms/general",
        Some(json!({ "state": "open" })),
        &claims,
    )
    .await;
    let minute = "2026-11-24T10:15:00Z";
    for i in 0..30 {
        publisher
            .publish(&question(
                "general",
                &format!("flood question {i}"),
                &format!("2026-11-24T10:15:{i:02}Z"),
            ))
            .await
            .expect("publish");
    }
    pipeline.drain(20).await;
    let posted = pipeline.chat.messages_in("general");
    let notice = message_id(flood_notice_id(
        &RoomName::parse("general").expect("room"),
        minute.parse::<jiff::Timestamp>().expect("t").as_second() / 60,
    ));
    let floods = posted.iter().filter(|m| m.msg.contains("flood question")).count();
    let notices = posted.iter().filter(|m| m.id == notice).count();
    assert_eq!((floods, notices), (FLOOD_THRESHOLD as usize, 1), "{posted:#?}");
    let (_, overview) = call(&console, "GET", "/instructor/api/overview", None, &claims).await;
    assert_eq!(overview["rooms"][0]["state"], "review");
    assert_eq!(overview["rooms"][0]["reason"], "flood");
    assert_eq!(overview["rooms"][0]["held"], 10, "{overview}");

    // A held question past its expiry is gone.
    let now = jiff::Timestamp::now();
    let short = question("rust-101", "held briefly", "2026-11-24T10:20:00Z");
    let short_question = Question::try_from(short.clone()).expect("question");
    store
        .hold(
            &short_question,
            HoldReason::Review,
            now,
            now.checked_add(Duration::from_secs(1)).expect("t"),
        )
        .await
        .expect("hold");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, overview) = call(&console, "GET", "/instructor/api/overview", None, &claims).await;
    assert_eq!(overview["rooms"][1]["held"], 0, "{overview}");
    let expired = format!("/instructor/api/rooms/rust-101/held/{}/approve", short.id);
    assert_eq!(call(&console, "POST", &expired, None, &claims).await.0, 404);

    // Redrive from the console: a dead letter is counted, shown in a dry run, then moved back and posted.
    let dead = question("rust-101", "dead-lettered during an outage", "2026-11-24T10:30:00Z");
    pipeline
        .world
        .sqs
        .send_message()
        .queue_url(&pipeline.world.dlq_url)
        .message_body(dead.to_json())
        .send()
        .await
        .expect("send to the DLQ");
    let (_, overview) = call(&console, "GET", "/instructor/api/overview", None, &claims).await;
    assert_eq!(overview["dead_letters"]["count"], 1, "{overview}");
    assert_eq!(overview["dead_letters"]["oldest_submitted_at"], "2026-11-24T10:30:00Z");
    let (status, dry) = call(
        &console,
        "POST",
        "/instructor/api/redrive",
        Some(json!({ "dry_run": true })),
        &claims,
    )
    .await;
    assert_eq!((status, dry["moved"].as_u64()), (200, Some(0)), "{dry}");
    assert_eq!(dry["would_move"]["count"], 1, "{dry}");
    let (status, moved) = call(&console, "POST", "/instructor/api/redrive", Some(json!({})), &claims).await;
    assert_eq!((status, moved["moved"].as_u64()), (200, Some(1)), "{moved}");
    pipeline.drain(10).await;
    let posted = pipeline.chat.messages_in("rust-course");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].id, message_id(dead.id));
}
