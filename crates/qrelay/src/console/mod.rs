//! The instructor's console API (`/instructor/api/*`): room states, held questions, the dead-letter queue.
//! Deployed, it runs in its own function behind API Gateway's JWT authorizer (Cognito); locally, the runner
//! serves it on loopback only.
//!
//! **Invariant:** every request is refused (401) unless it carries an instructor's verified identity: claims
//! from API Gateway's JWT authorizer whose issuer and audience are this deployment's user pool and client, or the
//! local runner's loopback-only [`ConsoleAuth::Local`]. The authorizer checks the token's signature and expiry;
//! this check stands if a route is ever deployed without it.
//! **Invariant:** every action is logged with the instructor's identity, the action and the room; never anything
//! of a student's (a held question is named by its id only).

mod page;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{error, info, warn};

pub use page::{PageAuth, console_page};

use crate::chat::Guarantee;
use crate::control::{ControlStore, Decided, Decision, HeldStatus, RoomState};
use crate::digest::{Days, DigestRequested, DigestRequests, Digester, ExportFormat};
use crate::domain::{QuestionId, RoomName, Rooms};
use crate::publish::QuestionPublisher;
use crate::redrive::{DeadLetterMover, DeadLetterQueue, Redrive, RedriveError, RedriveSummary};
use crate::web::{json, query_param, route_path};

/// How the console knows who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAuth {
    /// Deployed: API Gateway's JWT authorizer verified a Cognito ID token; its claims must name this pool
    /// (`iss`) and this app client (`aud`).
    Jwt { issuer: String, audience: String },
    /// The local runner, which serves the console on loopback only: whoever is at this machine.
    Local,
}

/// The dead-letter queue as the console uses it: the redrive function's library, in process.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Runs a redrive request (`{"dry_run": true}`, `{}`), as the redrive function would.
    async fn redrive(&self, request: serde_json::Value, deadline: SystemTime) -> Result<RedriveSummary, RedriveError>;
}

#[async_trait]
impl<Q, C, N> DeadLetters for Redrive<Q, C, N>
where
    Q: DeadLetterQueue,
    C: DeadLetterMover,
    N: DeadLetterMover,
{
    async fn redrive(&self, request: serde_json::Value, deadline: SystemTime) -> Result<RedriveSummary, RedriveError> {
        self.handle(request, deadline).await
    }
}

/// What the console shows about the chat: its name and what it promises.
#[derive(Debug, Clone, Copy)]
pub struct ChatInfo {
    pub label: &'static str,
    pub guarantee: Guarantee,
}

/// After class: the export of a room's delivered questions, and the digest on demand.
pub struct AfterClass {
    /// The archive, read without the chat (the console never holds the chat's token).
    pub digester: Arc<Digester>,
    /// The course's time zone: what "today" and an export's days mean.
    pub time_zone: jiff::tz::TimeZone,
    /// Where "mail me these questions" goes, and the address it mails; `None` without `DIGEST_EMAIL`.
    pub digest: Option<(Arc<dyn DigestRequests>, String)>,
}

impl std::fmt::Debug for AfterClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfterClass")
            .field("time_zone", &self.time_zone)
            .field("digest_to", &self.digest.as_ref().map(|(_, to)| to))
            .finish_non_exhaustive()
    }
}

/// The console API's handler with what it needs, built once per execution environment.
pub struct Console {
    rooms: Rooms,
    store: Arc<dyn ControlStore>,
    publisher: Arc<dyn QuestionPublisher>,
    dead_letters: Arc<dyn DeadLetters>,
    chat: ChatInfo,
    flood_threshold: u32,
    auth: ConsoleAuth,
    after_class: Option<AfterClass>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("rooms", &self.rooms)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// How long a console request may spend on the dead-letter queue: well inside API Gateway's 30 s.
const REDRIVE_BUDGET: Duration = Duration::from_secs(20);

/// A request the console refuses, with the status and the code its JSON error carries.
#[derive(Debug)]
struct ConsoleError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ConsoleError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn response(&self) -> Response<Body> {
        json(
            self.status,
            &json!({ "error": { "code": self.code, "message": self.message } }),
        )
    }

    fn unavailable(what: impl std::fmt::Display) -> Self {
        error!(error = %what, "console request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the console's store or queue could not be reached; try again in a moment",
        )
    }
}

/// The instructor making a request, as the logs name them.
#[derive(Debug)]
struct Instructor(String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateChange {
    state: String,
}

impl Console {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rooms: Rooms,
        store: Arc<dyn ControlStore>,
        publisher: Arc<dyn QuestionPublisher>,
        dead_letters: Arc<dyn DeadLetters>,
        chat: ChatInfo,
        flood_threshold: u32,
        auth: ConsoleAuth,
    ) -> Self {
        Self {
            rooms,
            store,
            publisher,
            dead_letters,
            chat,
            flood_threshold,
            auth,
            after_class: None,
        }
    }

    /// Gives the console the export of a room's questions and, with a mailer, the digest on demand.
    pub fn with_after_class(self, after_class: AfterClass) -> Self {
        Self {
            after_class: Some(after_class),
            ..self
        }
    }

    /// Answers one request. Never panics on any input: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        match self.route(&req).await {
            Ok(response) => response,
            Err(e) => {
                if e.status.is_client_error() {
                    info!(status = e.status.as_u16(), code = e.code, "console request refused");
                }
                e.response()
            }
        }
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>, ConsoleError> {
        let instructor = self.instructor(req)?;
        let path = route_path(req);
        let Some(rest) = path.strip_prefix("/instructor/api/") else {
            return Err(not_found());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let method = req.method();
        match parts.as_slice() {
            ["overview"] => {
                allow(method, &Method::GET)?;
                self.overview(&instructor).await
            }
            ["rooms", room] => {
                allow(method, &Method::PUT)?;
                let room = self.room(room)?;
                self.set_state(&instructor, &room, req.body().as_ref()).await
            }
            ["rooms", room, "held", id, action] => {
                allow(method, &Method::POST)?;
                let room = self.room(room)?;
                let id = QuestionId::parse(id).ok_or_else(|| {
                    ConsoleError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_question",
                        format!("{id:?} is not a question id"),
                    )
                })?;
                let decision = match *action {
                    "approve" => Decision::Approve,
                    "reject" => Decision::Reject,
                    _ => return Err(not_found()),
                };
                self.decide(&instructor, &room, id, decision).await
            }
            ["redrive"] => {
                allow(method, &Method::POST)?;
                self.redrive(&instructor, req.body().as_ref()).await
            }
            ["rooms", room, "export"] => {
                allow(method, &Method::GET)?;
                let room = self.room(room)?;
                self.export(&instructor, &room, req).await
            }
            ["digest"] => {
                allow(method, &Method::POST)?;
                self.mail_digest(&instructor, req.body().as_ref()).await
            }
            _ => Err(not_found()),
        }
    }

    /// The instructor behind the request, from the verified claims; 401 without them.
    fn instructor(&self, req: &Request) -> Result<Instructor, ConsoleError> {
        let (issuer, audience) = match &self.auth {
            ConsoleAuth::Local => return Ok(Instructor("local instructor".into())),
            ConsoleAuth::Jwt { issuer, audience } => (issuer, audience),
        };
        let unauthorized = |why: &str| {
            warn!(reason = why, "console request without a valid instructor identity");
            ConsoleError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in as an instructor to use the console",
            )
        };
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        }
        .filter(|claims| !claims.is_empty())
        .ok_or_else(|| unauthorized("no verified claims"))?;
        if claims.get("iss") != Some(issuer) {
            return Err(unauthorized("the token's issuer is not this deployment's user pool"));
        }
        // An ID token names the app client in `aud`; an access token in `client_id`.
        let client = claims.get("aud").or_else(|| claims.get("client_id"));
        if client != Some(audience) {
            return Err(unauthorized("the token is for another app client"));
        }
        let who = claims
            .get("email")
            .or_else(|| claims.get("cognito:username"))
            .or_else(|| claims.get("username"))
            .or_else(|| claims.get("sub"))
            .ok_or_else(|| unauthorized("the token names nobody"))?;
        Ok(Instructor(who.clone()))
    }

    fn room(&self, raw: &str) -> Result<RoomName, ConsoleError> {
        self.rooms
            .get(raw)
            .map(|room| room.name().clone())
            .ok_or_else(|| ConsoleError::new(StatusCode::NOT_FOUND, "unknown_room", format!("unknown room {raw:?}")))
    }

    async fn overview(&self, instructor: &Instructor) -> Result<Response<Body>, ConsoleError> {
        let now = jiff::Timestamp::now();
        let mut rooms = Vec::new();
        let mut held = Vec::new();
        for room in self.rooms.iter() {
            let name = room.name();
            let status = self.store.room_status(name).await.map_err(ConsoleError::unavailable)?;
            let questions = self.store.held(name, now).await.map_err(ConsoleError::unavailable)?;
            let waiting = questions.iter().filter(|q| q.status == HeldStatus::Held).count();
            rooms.push(json!({
                "room": name.as_ref(),
                "state": status.state,
                "reason": status.reason,
                "changed_at": status.changed_at,
                "held": waiting,
            }));
            held.extend(questions.into_iter().filter(|q| q.status == HeldStatus::Held).map(|q| {
                json!({
                    "id": q.question.id,
                    "room": q.question.room,
                    "text": q.question.text,
                    "nickname": q.question.nickname,
                    "submitted_at": q.question.submitted_at,
                    "held_at": q.held_at,
                    "reason": q.reason,
                    "status": q.status,
                })
            }));
        }
        let dead_letters = match self
            .dead_letters
            .redrive(json!({ "dry_run": true }), SystemTime::now() + REDRIVE_BUDGET)
            .await
        {
            Ok(summary) => {
                let report = summary.would_move.unwrap_or_default();
                json!({ "count": report.count.max(summary.remaining.min(u64::from(u32::MAX)) as u32),
                        "oldest_submitted_at": report.oldest_submitted_at })
            }
            Err(e) => {
                warn!(error = %e, "could not look into the dead-letter queue");
                json!({ "count": null, "oldest_submitted_at": null, "error": "the dead-letter queue could not be read" })
            }
        };
        Ok(json(
            StatusCode::OK,
            &json!({
                "instructor": instructor.0,
                "chat": { "kind": self.chat.label, "guarantee": self.chat.guarantee.label() },
                "rooms": rooms,
                "held": held,
                "dead_letters": dead_letters,
                "flood_threshold": self.flood_threshold,
                "after_class": {
                    "export": self.after_class.is_some(),
                    "digest_to": self.after_class.as_ref().and_then(|a| a.digest.as_ref()).map(|(_, to)| to.as_str()),
                },
            }),
        ))
    }

    async fn set_state(
        &self,
        instructor: &Instructor,
        room: &RoomName,
        body: &[u8],
    ) -> Result<Response<Body>, ConsoleError> {
        let change: StateChange = serde_json::from_slice(body).map_err(|e| {
            ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("send {{\"state\": \"open\" | \"review\" | \"paused\"}}: {e}"),
            )
        })?;
        let state: RoomState = change.state.parse().map_err(|e: crate::control::InvalidRoomState| {
            ConsoleError::new(StatusCode::BAD_REQUEST, "invalid_state", e.to_string())
        })?;
        let status = self
            .store
            .set_room_state(room, state, jiff::Timestamp::now())
            .await
            .map_err(ConsoleError::unavailable)?;
        info!(instructor = %instructor.0, action = "set_state", room = %room, state = %state, "room state changed");
        Ok(json(
            StatusCode::OK,
            &json!({ "room": room.as_ref(), "state": status.state, "message": state_sentence(room, state) }),
        ))
    }

    async fn decide(
        &self,
        instructor: &Instructor,
        room: &RoomName,
        id: QuestionId,
        decision: Decision,
    ) -> Result<Response<Body>, ConsoleError> {
        let now = jiff::Timestamp::now();
        let decided = self
            .store
            .decide(room, id, decision, now)
            .await
            .map_err(ConsoleError::unavailable)?;
        let action = match decision {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        };
        let status = match (decision, decided) {
            (_, Decided::Unknown) => {
                return Err(ConsoleError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_question",
                    format!("no held question {id} in room {room} (never held, or expired)"),
                ));
            }
            (Decision::Approve, Decided::Already(HeldStatus::Rejected)) => {
                return Err(ConsoleError::new(
                    StatusCode::CONFLICT,
                    "already_rejected",
                    "this question was rejected; it can't be approved",
                ));
            }
            (Decision::Reject, Decided::Already(HeldStatus::Approved)) => {
                return Err(ConsoleError::new(
                    StatusCode::CONFLICT,
                    "already_approved",
                    "this question was approved and sent to the chat; it can't be rejected",
                ));
            }
            (_, Decided::Already(status)) => status,
            (Decision::Reject, Decided::Now(_)) => HeldStatus::Rejected,
            (Decision::Approve, Decided::Now(held)) => {
                // Through the queue, like any question: its own id, the consumer's retries while the chat is down.
                self.publisher.publish(&held.question).await.map_err(|e| {
                    error!(error = format!("{e:#}"), question_id = %id, "approved, but not published");
                    ConsoleError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "approved, but it could not be sent on: tap Approve again in 30 seconds",
                    )
                })?;
                if let Err(e) = self.store.mark_published(room, id, now).await {
                    // Harmless: a later approval may publish it again, and the chat posts it once.
                    warn!(error = %e, question_id = %id, "published, but not marked as published");
                }
                HeldStatus::Approved
            }
        };
        info!(instructor = %instructor.0, action, room = %room, question_id = %id, "held question decided");
        let message = match status {
            HeldStatus::Approved => "Approved: it appears in the chat within seconds (or as soon as the chat is back).",
            HeldStatus::Rejected => "Rejected: it will not be posted.",
            HeldStatus::Held => "Still held.",
        };
        Ok(json(
            StatusCode::OK,
            &json!({ "id": id, "room": room.as_ref(), "status": status, "message": message }),
        ))
    }

    async fn redrive(&self, instructor: &Instructor, body: &[u8]) -> Result<Response<Body>, ConsoleError> {
        let request: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ConsoleError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("send {{\"dry_run\": true}} to look, {{}} to move: {e}"),
                )
            })?
        };
        if !request.is_object() {
            return Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "send {\"dry_run\": true} to look, {} to move",
            ));
        }
        let dry_run = request.get("dry_run").and_then(serde_json::Value::as_bool) == Some(true);
        match self
            .dead_letters
            .redrive(request, SystemTime::now() + REDRIVE_BUDGET)
            .await
        {
            Ok(summary) => {
                info!(instructor = %instructor.0, action = "redrive", dry_run, moved = summary.moved, "redrive");
                Ok(json(
                    StatusCode::OK,
                    &serde_json::to_value(&summary).unwrap_or_default(),
                ))
            }
            Err(RedriveError::InvalidRequest(reason)) => {
                Err(ConsoleError::new(StatusCode::BAD_REQUEST, "invalid_body", reason))
            }
            Err(e) => Err(ConsoleError::unavailable(e)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestRequest {
    room: Option<String>,
    date: Option<String>,
}

impl Console {
    fn after_class(&self) -> Result<&AfterClass, ConsoleError> {
        self.after_class.as_ref().ok_or_else(|| {
            ConsoleError::new(
                StatusCode::CONFLICT,
                "archive_off",
                "this deployment keeps no delivered questions (RETENTION_DAYS is 0)",
            )
        })
    }

    /// `GET rooms/{room}/export?format=csv|markdown&from=YYYY-MM-DD&to=YYYY-MM-DD`: the room's delivered questions
    /// of those days (both included; today by default), in submission order.
    async fn export(
        &self,
        instructor: &Instructor,
        room: &RoomName,
        req: &Request,
    ) -> Result<Response<Body>, ConsoleError> {
        let after_class = self.after_class()?;
        let bad = |code: &'static str, message: String| ConsoleError::new(StatusCode::BAD_REQUEST, code, message);
        let format: ExportFormat = query_param(req, "format")
            .unwrap_or_else(|| "csv".into())
            .parse()
            .map_err(|e| bad("invalid_format", e))?;
        let now = jiff::Timestamp::now();
        let today = Days::today(now, &after_class.time_zone).first.to_string();
        let from = query_param(req, "from").unwrap_or_else(|| today.clone());
        let to = query_param(req, "to").unwrap_or_else(|| from.clone());
        let days = Days::parse(&from, &to, &after_class.time_zone).map_err(|e| bad("invalid_dates", e))?;
        let digest = after_class
            .digester
            .room(room, &days, now)
            .await
            .map_err(ConsoleError::unavailable)?;
        info!(instructor = %instructor.0, action = "export", room = %room, format = format.extension(),
              questions = digest.entries.len(), "questions exported");
        let body = format.render(room, &digest.entries, &after_class.time_zone);
        let filename = format!("qrelay-{room}-{}-{}.{}", days.first, days.last, format.extension());
        Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, format.content_type())
            .header(
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            )
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(Body::from(body))
            .map_err(ConsoleError::unavailable)
    }

    /// `POST digest` with `{"room"?: …, "date"?: "YYYY-MM-DD"}`: mails that day's digest (today, every room by
    /// default) to the digest address.
    async fn mail_digest(&self, instructor: &Instructor, body: &[u8]) -> Result<Response<Body>, ConsoleError> {
        let after_class = self.after_class()?;
        let request: DigestRequest = if body.iter().all(u8::is_ascii_whitespace) {
            DigestRequest::default()
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ConsoleError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("send {{}} for today's questions of every room, or {{\"room\": …, \"date\": \"YYYY-MM-DD\"}}: {e}"),
                )
            })?
        };
        let rooms = match &request.room {
            Some(room) => vec![self.room(room)?],
            None => self.rooms.iter().map(|r| r.name().clone()).collect(),
        };
        let Some((requests, to)) = &after_class.digest else {
            return Err(ConsoleError::new(
                StatusCode::CONFLICT,
                "digest_off",
                "no digest address is configured (the DigestEmail parameter); use the export instead",
            ));
        };
        let days = match &request.date {
            Some(date) => Days::parse(date, date, &after_class.time_zone)
                .map_err(|e| ConsoleError::new(StatusCode::BAD_REQUEST, "invalid_dates", e))?,
            None => Days::today(jiff::Timestamp::now(), &after_class.time_zone),
        };
        let requested = requests
            .request(&rooms, days.first)
            .await
            .map_err(ConsoleError::unavailable)?;
        info!(instructor = %instructor.0, action = "digest", rooms = rooms.len(), day = %days.first,
              "digest requested");
        let message = match requested {
            DigestRequested::Mailed { questions: 0 } => {
                format!("No question reached the chat on {}: nothing to mail.", days.first)
            }
            DigestRequested::Mailed { questions } => {
                format!("Mailed {questions} question(s) of {} to {to}.", days.first)
            }
            DigestRequested::Queued => {
                format!("The digest of {} is on its way to {to} (within a minute).", days.first)
            }
        };
        Ok(json(
            StatusCode::OK,
            &json!({ "day": days.first.to_string(), "message": message }),
        ))
    }
}

fn state_sentence(room: &RoomName, state: RoomState) -> String {
    match state {
        RoomState::Open => format!("Room {room} is open: questions go to the chat."),
        RoomState::Review => format!("Room {room} is under review: questions wait here for your approval."),
        RoomState::Paused => format!("Room {room} is paused: the form takes no questions."),
    }
}

fn allow(method: &Method, allowed: &Method) -> Result<(), ConsoleError> {
    if method == allowed {
        Ok(())
    } else {
        Err(ConsoleError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {allowed} here"),
        ))
    }
}

fn not_found() -> ConsoleError {
    ConsoleError::new(StatusCode::NOT_FOUND, "not_found", "no such console API route")
}

#[cfg(test)]
mod tests;
