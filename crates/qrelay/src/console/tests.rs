//! The console API's handler with API Gateway v2 events (the sample events in `events/`), an in-memory store, a
//! recording publisher and a scripted dead-letter queue.

use std::sync::Mutex;

use super::*;
use crate::control::{HoldReason, MemoryStore};
use crate::domain::{Question, QuestionMessage, QuestionText};

const ISSUER: &str = "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_EXAMPLE";
const CLIENT: &str = "4example0clientid0000000000";

#[derive(Default)]
struct Published(Mutex<Vec<QuestionMessage>>);

#[async_trait]
impl QuestionPublisher for Published {
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String> {
        self.0.lock().expect("lock").push(question.clone());
        Ok("m-1".into())
    }
}

#[derive(Default)]
struct ScriptedDeadLetters(Mutex<Vec<serde_json::Value>>);

#[async_trait]
impl DeadLetters for ScriptedDeadLetters {
    async fn redrive(&self, request: serde_json::Value, _: SystemTime) -> Result<RedriveSummary, RedriveError> {
        if request.get("max_messages").is_some_and(|m| m == 0) {
            return Err(RedriveError::InvalidRequest("max_messages must be at least 1".into()));
        }
        self.0.lock().expect("lock").push(request);
        // The real thing, against an empty queue, is covered by the redrive tests; here what matters is the call.
        Err(RedriveError::Failed(anyhow::anyhow!("no queue in this test")))
    }
}

struct Fixture {
    console: Console,
    store: Arc<MemoryStore>,
    published: Arc<Published>,
    dead_letters: Arc<ScriptedDeadLetters>,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let published = Arc::new(Published::default());
    let dead_letters = Arc::new(ScriptedDeadLetters::default());
    let console = Console::new(
        Rooms::parse("general,rust-101").expect("rooms"),
        store.clone(),
        published.clone(),
        dead_letters.clone(),
        ChatInfo {
            label: "Rocket.Chat",
            guarantee: Guarantee::ExactlyOnce,
        },
        20,
        ConsoleAuth::Jwt {
            issuer: ISSUER.into(),
            audience: CLIENT.into(),
        },
    );
    Fixture {
        console,
        store,
        published,
        dead_letters,
    }
}

/// The sample overview event, sent as `method path` with `body`; `claims` edits its verified claims.
fn request(method: &str, path: &str, body: Option<&str>, claims: impl FnOnce(&mut serde_json::Value)) -> Request {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/console-overview.json")).expect("json");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    if let Some(body) = body {
        event["body"] = body.into();
    }
    claims(&mut event["requestContext"]["authorizer"]["jwt"]["claims"]);
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

fn signed_in(method: &str, path: &str, body: Option<&str>) -> Request {
    request(method, path, body, |_| {})
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

async fn held_question(store: &MemoryStore, room: &str) -> QuestionId {
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse(room).expect("room"),
        text: QuestionText::parse("a held question", 1000).expect("text"),
        nickname: None,
        submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
    };
    let now = jiff::Timestamp::now();
    let expires = now.checked_add(Duration::from_secs(86_400)).expect("t");
    store
        .hold(&question, HoldReason::Review, now, expires)
        .await
        .expect("hold");
    question.id
}

#[tokio::test]
async fn the_sample_events_are_answered() {
    let f = fixture();
    for (file, status) in [
        (include_str!("../../../../events/console-overview.json"), 200),
        (include_str!("../../../../events/console-review-room.json"), 200),
        // The scripted dead-letter queue fails: the console says so without details.
        (include_str!("../../../../events/console-redrive-dry-run.json"), 503),
    ] {
        let response = f
            .console
            .handle(lambda_http::request::from_str(file).expect("event"))
            .await;
        assert_eq!(response.status(), status, "{}", body(&response));
    }
    assert_eq!(
        f.dead_letters.0.lock().expect("lock").last(),
        Some(&json!({ "dry_run": true }))
    );
}

#[tokio::test]
async fn a_request_without_verified_claims_or_with_anothers_is_refused() {
    let f = fixture();
    let cases: Vec<(&str, Request)> = vec![
        (
            "no authorizer at all (a route deployed without it)",
            request("GET", "/instructor/api/overview", None, |c| *c = json!({})),
        ),
        (
            "another user pool",
            request("GET", "/instructor/api/overview", None, |c| {
                c["iss"] = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER".into();
            }),
        ),
        (
            "another app client",
            request("GET", "/instructor/api/overview", None, |c| {
                c["aud"] = "someone-else".into()
            }),
        ),
        (
            "a state change",
            request(
                "PUT",
                "/instructor/api/rooms/general",
                Some(r#"{"state":"paused"}"#),
                |c| *c = json!({}),
            ),
        ),
    ];
    for (case, req) in cases {
        let response = f.console.handle(req).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(body(&response)["error"]["code"], "unauthorized", "{case}");
    }
    assert_eq!(
        f.store
            .room_status(&RoomName::parse("general").expect("room"))
            .await
            .expect("status")
            .state,
        RoomState::Open,
        "nothing changed"
    );
}

#[tokio::test]
async fn the_overview_shows_rooms_held_questions_and_the_chats_guarantee() {
    let f = fixture();
    let id = held_question(&f.store, "rust-101").await;
    let response = f
        .console
        .handle(signed_in("GET", "/instructor/api/overview", None))
        .await;
    assert_eq!(response.status(), 200);
    let overview = body(&response);
    assert_eq!(overview["instructor"], "instructor@example.com");
    assert_eq!(
        overview["chat"],
        json!({ "kind": "Rocket.Chat", "guarantee": "exactly once" })
    );
    assert_eq!(overview["rooms"][1]["room"], "rust-101");
    assert_eq!(overview["rooms"][1]["held"], 1);
    assert_eq!(overview["rooms"][0]["state"], "open");
    assert_eq!(overview["held"][0]["id"], id.to_string());
    assert_eq!(overview["held"][0]["text"], "a held question");
    assert!(
        overview["dead_letters"]["count"].is_null(),
        "the scripted DLQ failed: {overview}"
    );
}

#[tokio::test]
async fn a_room_is_switched_and_a_held_question_decided_once() {
    let f = fixture();
    let response = f
        .console
        .handle(signed_in(
            "PUT",
            "/instructor/api/rooms/general",
            Some(r#"{"state":"paused"}"#),
        ))
        .await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    let general = RoomName::parse("general").expect("room");
    assert_eq!(
        f.store.room_status(&general).await.expect("status").state,
        RoomState::Paused
    );

    let id = held_question(&f.store, "general").await;
    let approve = format!("/instructor/api/rooms/general/held/{id}/approve");
    for _ in 0..2 {
        let response = f.console.handle(signed_in("POST", &approve, None)).await;
        assert_eq!(response.status(), 200, "{}", body(&response));
        assert_eq!(body(&response)["status"], "approved");
    }
    let published = f.published.0.lock().expect("lock").clone();
    assert_eq!(published.len(), 1, "approving twice publishes once");
    assert_eq!(published[0].id, id, "under the question's own id");

    let reject = format!("/instructor/api/rooms/general/held/{id}/reject");
    let response = f.console.handle(signed_in("POST", &reject, None)).await;
    assert_eq!(response.status(), 409);
    assert_eq!(body(&response)["error"]["code"], "already_approved");
}

#[tokio::test]
async fn bad_requests_get_a_4xx_naming_the_problem() {
    let f = fixture();
    let held = held_question(&f.store, "general").await;
    let unknown = QuestionId::new_random();
    let cases = [
        (
            "PUT",
            "/instructor/api/rooms/nowhere".to_owned(),
            Some(r#"{"state":"open"}"#),
            404,
            "unknown_room",
        ),
        (
            "PUT",
            "/instructor/api/rooms/general".to_owned(),
            Some(r#"{"state":"closed"}"#),
            400,
            "invalid_state",
        ),
        (
            "PUT",
            "/instructor/api/rooms/general".to_owned(),
            Some("{not json"),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/instructor/api/rooms/general".to_owned(),
            Some(r#"{"state":"open","x":1}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/instructor/api/rooms/general".to_owned(),
            None,
            400,
            "invalid_body",
        ),
        (
            "POST",
            format!("/instructor/api/rooms/general/held/{unknown}/approve"),
            None,
            404,
            "unknown_question",
        ),
        (
            "POST",
            "/instructor/api/rooms/general/held/not-an-id/approve".to_owned(),
            None,
            404,
            "unknown_question",
        ),
        (
            "POST",
            format!("/instructor/api/rooms/rust-101/held/{held}/approve"),
            None,
            404,
            "unknown_question",
        ),
        (
            "POST",
            format!("/instructor/api/rooms/general/held/{held}/ban"),
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/instructor/api/rooms/general/held/{held}/approve"),
            None,
            405,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/instructor/api/overview".to_owned(),
            None,
            405,
            "method_not_allowed",
        ),
        ("GET", "/instructor/api/nothing".to_owned(), None, 404, "not_found"),
        (
            "POST",
            "/instructor/api/redrive".to_owned(),
            Some("[1]"),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/instructor/api/redrive".to_owned(),
            Some(r#"{"max_messages":0}"#),
            400,
            "invalid_body",
        ),
    ];
    for (method, path, req_body, status, code) in cases {
        let response = f.console.handle(signed_in(method, &path, req_body)).await;
        let answer = body(&response);
        assert_eq!(
            (response.status().as_u16(), answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {req_body:?}: {answer}"
        );
        assert!(
            answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    assert!(f.published.0.lock().expect("lock").is_empty(), "nothing was published");
}

#[tokio::test]
async fn the_local_console_needs_no_token() {
    let mut f = fixture();
    f.console.auth = ConsoleAuth::Local;
    let response = f
        .console
        .handle(request("GET", "/instructor/api/overview", None, |c| *c = json!({})))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(&response)["instructor"], "local instructor");
}

#[test]
fn each_chat_kinds_stated_guarantee_is_its_adapters_own() {
    use crate::chat::ChatKind;
    use crate::chat::secret::{ChatSecret, StaticSecret};
    let http = crate::chat::http_client(Duration::from_secs(1)).expect("client");
    let secret = Arc::new(StaticSecret(
        ChatSecret::parse(r#"{"webhook_url":"https://chat.example/hook"}"#).expect("secret"),
    ));
    let kinds = [
        ChatKind::RocketChat {
            url: "https://chat.example".into(),
        },
        ChatKind::Webhook,
        ChatKind::Discord,
        ChatKind::Teams,
        ChatKind::Slack,
        ChatKind::Mattermost {
            url: "https://chat.example".into(),
        },
        ChatKind::GoogleChat,
    ];
    for kind in kinds {
        let poster = crate::chat::poster(&kind, http.clone(), secret.clone());
        assert_eq!(kind.guarantee(), poster.guarantee(), "{kind:?}");
    }
}

fn with_after_class(f: Fixture, mail: bool) -> (Console, Arc<crate::digest::Outbox>) {
    let outbox = Arc::new(crate::digest::Outbox::default());
    let rooms = Rooms::parse("general,rust-101").expect("rooms");
    let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").expect("zone");
    let in_process = crate::digest::ScheduledDigest {
        digester: Digester::new(rooms.clone(), f.store.clone(), None),
        mailer: outbox.clone(),
        to: "teacher@example.com".into(),
        language: crate::digest::Language::En,
        time_zone: tokyo.clone(),
    };
    let console = f.console.with_after_class(AfterClass {
        digester: Arc::new(Digester::new(rooms, f.store.clone(), None)),
        time_zone: tokyo,
        digest: mail.then(|| {
            (
                Arc::new(in_process) as Arc<dyn DigestRequests>,
                "teacher@example.com".to_owned(),
            )
        }),
    });
    (console, outbox)
}

fn with_query(method: &str, path_and_query: &str) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    request(method, path, None, |_| {}).tap_query(query)
}

trait TapQuery {
    fn tap_query(self, query: &str) -> Self;
}

impl TapQuery for Request {
    /// The query string as API Gateway passes it: parsed into the request's query parameters.
    fn tap_query(self, query: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("query");
        let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        for (k, v) in pairs {
            map.entry(k).or_default().push(v);
        }
        self.with_query_string_parameters(map)
    }
}

#[tokio::test]
async fn the_export_gives_todays_delivered_questions_of_a_room() {
    let f = fixture();
    let store = f.store.clone();
    let (console, _) = with_after_class(f, false);
    let now = jiff::Timestamp::now();
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse("rust-101").expect("room"),
        text: QuestionText::parse("exported, with a comma", 1000).expect("text"),
        nickname: None,
        submitted_at: now,
    };
    let expires = now.checked_add(Duration::from_secs(86_400)).expect("t");
    store.archive(&question, now, expires).await.expect("archive");

    let response = console
        .handle(with_query("GET", "/instructor/api/rooms/rust-101/export?format=csv"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = response.headers()["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"qrelay-rust-101-"),
        "{disposition}"
    );
    let csv = String::from_utf8(response.body().to_vec()).expect("utf-8");
    assert!(csv.contains("\"exported, with a comma\""), "{csv}");
    assert!(csv.contains(&question.id.to_string()), "{csv}");

    let md = console
        .handle(with_query(
            "GET",
            "/instructor/api/rooms/general/export?format=markdown",
        ))
        .await;
    assert_eq!(md.status(), 200);
    assert!(
        String::from_utf8(md.body().to_vec())
            .expect("utf-8")
            .contains("No questions.")
    );
}

#[tokio::test]
async fn bad_export_and_digest_requests_are_refused_with_what_is_wrong() {
    let (console, outbox) = with_after_class(fixture(), true);
    for (method, path, body, status, code) in [
        ("GET", "/instructor/api/rooms/nope/export", None, 404, "unknown_room"),
        (
            "GET",
            "/instructor/api/rooms/general/export?format=xlsx",
            None,
            400,
            "invalid_format",
        ),
        (
            "GET",
            "/instructor/api/rooms/general/export?from=2026-13-01",
            None,
            400,
            "invalid_dates",
        ),
        (
            "GET",
            "/instructor/api/rooms/general/export?from=2026-12-05&to=2026-12-01",
            None,
            400,
            "invalid_dates",
        ),
        (
            "POST",
            "/instructor/api/rooms/general/export",
            None,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/instructor/api/digest",
            Some(r#"{"room":"nope"}"#),
            404,
            "unknown_room",
        ),
        (
            "POST",
            "/instructor/api/digest",
            Some(r#"{"date":"tomorrow"}"#),
            400,
            "invalid_dates",
        ),
        (
            "POST",
            "/instructor/api/digest",
            Some(r#"{"rooms":["general"]}"#),
            400,
            "invalid_body",
        ),
        ("POST", "/instructor/api/digest", Some("[1]"), 400, "invalid_body"),
        ("GET", "/instructor/api/digest", None, 405, "method_not_allowed"),
    ] {
        let req = match body {
            Some(body) => signed_in(method, path, Some(body)),
            None => with_query(method, path),
        };
        let response = console.handle(req).await;
        assert_eq!(response.status(), status, "{method} {path} {body:?}");
        assert_eq!(body_of(&response)["error"]["code"], code, "{method} {path} {body:?}");
    }
    assert!(outbox.sent().is_empty());
}

fn body_of(response: &Response<Body>) -> serde_json::Value {
    body(response)
}

#[tokio::test]
async fn mail_me_sends_the_digest_or_says_why_it_cant() {
    let f = fixture();
    let store = f.store.clone();
    let (console, outbox) = with_after_class(f, true);
    let response = console
        .handle(signed_in("POST", "/instructor/api/digest", Some("{}")))
        .await;
    assert_eq!(response.status(), 200, "{:?}", body(&response));
    assert!(outbox.sent().is_empty(), "a day without questions mails nothing");
    assert!(
        body(&response)["message"]
            .as_str()
            .expect("message")
            .contains("nothing to mail")
    );
    let now = jiff::Timestamp::now();
    let question = Question {
        id: QuestionId::new_random(),
        room: RoomName::parse("general").expect("room"),
        text: QuestionText::parse("mail me", 1000).expect("text"),
        nickname: None,
        submitted_at: now,
    };
    let expires = now.checked_add(Duration::from_secs(86_400)).expect("t");
    store.archive(&question, now, expires).await.expect("archive");
    let response = console
        .handle(signed_in(
            "POST",
            "/instructor/api/digest",
            Some(r#"{"room":"general"}"#),
        ))
        .await;
    assert_eq!(response.status(), 200, "{:?}", body(&response));
    let message = body(&response)["message"].as_str().expect("message").to_owned();
    assert!(
        message.contains("Mailed 1 question(s)") && message.contains("teacher@example.com"),
        "{message}"
    );
    let sent = outbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("mail me"), "{}", sent[0].text);
    let overview = body(&console.handle(signed_in("GET", "/instructor/api/overview", None)).await);
    assert_eq!(overview["after_class"]["digest_to"], "teacher@example.com");

    let (console, _) = with_after_class(fixture(), false);
    let response = console
        .handle(signed_in("POST", "/instructor/api/digest", Some("{}")))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(body(&response)["error"]["code"], "digest_off");
    // Without the archive at all (RETENTION_DAYS=0), neither exists.
    let bare = fixture().console;
    for req in [
        signed_in("POST", "/instructor/api/digest", Some("{}")),
        with_query("GET", "/instructor/api/rooms/general/export"),
    ] {
        let response = bare.handle(req).await;
        assert_eq!(response.status(), 409);
        assert_eq!(body(&response)["error"]["code"], "archive_off");
    }
}

#[tokio::test]
async fn export_and_digest_need_an_instructor_too() {
    let (console, outbox) = with_after_class(fixture(), true);
    for req in [
        request("POST", "/instructor/api/digest", Some("{}"), |claims| {
            *claims = serde_json::json!({})
        }),
        request("GET", "/instructor/api/rooms/general/export", None, |claims| {
            *claims = serde_json::json!({})
        }),
    ] {
        assert_eq!(console.handle(req).await.status(), 401);
    }
    assert!(outbox.sent().is_empty());
}
