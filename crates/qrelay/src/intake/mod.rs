//! The intake function: serves the question form and accepts questions, acknowledging one only after it has
//! been durably published. This file holds the handler and its routes; what it reads from a request, the answers
//! it sends, the pages, their strings and the body's decoding each have their own file.
//!
//! **Invariant:** a `202 queued` is sent only after [`QuestionPublisher::publish`] returned `Ok`.
//! **Invariant:** nothing from the request but the submitted fields reaches the published document or the logs:
//! no source address, user agent, cookie or other header.

mod error;
mod lang;
mod page;
mod qr;
mod request;
mod response;
mod strings;
mod submission;

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use tracing::{Instrument, error, info, info_span};

use crate::control::{CachedRooms, RoomState};
use crate::domain::{Limits, QuestionId, QuestionMessage, Room, RoomName, Rooms};
use crate::publish::QuestionPublisher;
use error::{ErrorCode, IntakeError};
use lang::Lang;
use page::{FormState, PageLinks};
use request::{accepts_html, base_path, has_cookie, public_base_url, query_param, route_path};
use response::{SENT_COOKIE, clear_sent_cookie, html, html_error, json, json_error, see_other_after_sending};
use submission::Encoding;

/// The intake function's handler with what it needs, built once per execution environment.
#[derive(Clone)]
pub struct Intake {
    rooms: Arc<Rooms>,
    limits: Limits,
    publisher: Arc<dyn QuestionPublisher>,
    /// Room states (paused rooms refuse questions), when the intake has a control store.
    control: Option<Arc<CachedRooms>>,
    /// How the instructor's console page (`GET /instructor`) signs in, when this deployment has a console.
    console_page: Option<crate::console::PageAuth>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("rooms", &self.rooms)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// The handler for `rooms`, with `limits` on what students may type, publishing through `publisher`.
    pub fn new(rooms: Rooms, limits: Limits, publisher: Arc<dyn QuestionPublisher>) -> Self {
        Self {
            rooms: Arc::new(rooms),
            limits,
            publisher,
            control: None,
            console_page: None,
        }
    }

    /// Serves the instructor's console page at `GET /instructor`, signing in as `auth` says. The page holds no
    /// secret and no data: everything it shows comes from the console API, which requires a signed-in instructor.
    pub fn with_console_page(self, auth: crate::console::PageAuth) -> Self {
        Self {
            console_page: Some(auth),
            ..self
        }
    }

    /// Reads room states from `rooms` (cached): a paused room's form refuses questions.
    pub fn with_control(self, rooms: Arc<CachedRooms>) -> Self {
        Self {
            control: Some(rooms),
            ..self
        }
    }

    /// Whether the instructor paused `room`. A store that can't be read counts as open, logged: the question is
    /// then published, and the consumer, which reads the store again, still holds it if the room is under review.
    async fn paused(&self, room: &RoomName) -> bool {
        let Some(control) = &self.control else {
            return false;
        };
        match control.status(room).await {
            Ok(status) => status.state == RoomState::Paused,
            Err(e) => {
                error!(error = %e, "could not read the room's state; taking the question");
                false
            }
        }
    }

    /// Answers one HTTP request. Never fails and never panics on any input: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = route_path(&req);
        let route = match path.as_str() {
            "/" | "" => Route::Form(None),
            "/questions" => Route::Questions,
            "/instructor" => return self.console(&req),
            "/favicon.ico" => Route::Favicon,
            p => match p
                .strip_prefix("/r/")
                .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            {
                Some((room, "")) if !room.is_empty() => Route::Form(Some(room)),
                Some((room, "qr.svg")) if !room.is_empty() => Route::QrCode(room),
                Some((room, "join")) if !room.is_empty() => Route::Join(room),
                _ => return self.error_response(&req, &IntakeError::NotFound),
            },
        };
        match (route, req.method()) {
            (Route::Form(room), &Method::GET) => self.form(&req, &path, room).await,
            (Route::QrCode(room), &Method::GET) => self.qr_code(&req, &path, room),
            (Route::Join(room), &Method::GET) => self.join(&req, &path, room),
            (Route::Favicon, &Method::GET) => response::favicon(),
            (Route::Questions, &Method::POST) => self.submit(&req, &path).await,
            (Route::Form(_) | Route::QrCode(_) | Route::Join(_) | Route::Favicon, _) => {
                self.error_response(&req, &IntakeError::MethodNotAllowed { allow: "GET" })
            }
            (Route::Questions, _) => self.error_response(&req, &IntakeError::MethodNotAllowed { allow: "POST" }),
        }
    }

    async fn form(&self, req: &Request, route_path: &str, room: Option<&str>) -> Response<Body> {
        let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
        let (room, links) = match room {
            None => (self.rooms.default_room(), LINKS_FROM_ROOT),
            Some(name) => match self.rooms.get(name) {
                Some(room) => (
                    room,
                    PageLinks {
                        action: "../questions",
                        form: name,
                    },
                ),
                None => return self.error_response(req, &IntakeError::NotFound),
            },
        };
        // A paused room's form says so before anyone types (the post would be refused the same way).
        let paused = self.paused(room.name()).await;
        // "Sent" only right after the redirect that set the one-time cookie; the page clears it, so the same
        // `?sent=1` address opened again (a reload, the history, a shared link) claims nothing.
        let just_sent = query_param(req, "sent").is_some() && has_cookie(req, SENT_COOKIE, "1");
        let state = FormState {
            sent: just_sent && !paused,
            error: paused.then_some(error::ErrorCode::RoomPaused),
            indexable: links.form.is_empty(),
            ..FormState::default()
        };
        let mut response = html(
            StatusCode::OK,
            self.render(lang, room, &links, QuestionId::new_random(), &state),
        );
        if just_sent {
            clear_sent_cookie(&mut response, &base_path(req, route_path));
        }
        response
    }

    /// The join screen of a room, to project at the start of class.
    fn join(&self, req: &Request, route_path: &str, room: &str) -> Response<Body> {
        let Some(room) = self.rooms.get(room) else {
            return self.error_response(req, &IntakeError::NotFound);
        };
        let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
        let link = format!("{}/r/{}", public_base_url(req, route_path), room.name());
        let Some(qr) = qr::svg_element(&link) else {
            return json_error(&IntakeError::NotFound);
        };
        let short = link.split_once("://").map_or(link.as_str(), |(_, rest)| rest);
        html(StatusCode::OK, page::render_join(lang, room, &qr, short))
    }

    /// The instructor's console page, if this deployment has a console.
    fn console(&self, req: &Request) -> Response<Body> {
        let Some(auth) = &self.console_page else {
            return self.error_response(req, &IntakeError::NotFound);
        };
        if req.method() != Method::GET {
            return self.error_response(req, &IntakeError::MethodNotAllowed { allow: "GET" });
        }
        let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
        let mut response = html(StatusCode::OK, crate::console::console_page(lang.code(), auth));
        // The page signs in by calling Cognito's API from the browser: the one address besides its own it may reach.
        if let crate::console::PageAuth::Cognito { region, .. } = auth {
            let csp = format!(
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                 connect-src 'self' https://cognito-idp.{region}.amazonaws.com; form-action 'self'; base-uri 'none'; \
                 frame-ancestors 'none'"
            );
            if let Ok(value) = http::HeaderValue::from_str(&csp) {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_SECURITY_POLICY, value);
            }
        }
        response
    }

    /// An SVG QR code of the room's form link, for the instructor to project.
    fn qr_code(&self, req: &Request, route_path: &str, room: &str) -> Response<Body> {
        if self.rooms.get(room).is_none() {
            return self.error_response(req, &IntakeError::NotFound);
        }
        let link = format!("{}/r/{room}", public_base_url(req, route_path));
        match qr::svg(&link) {
            Some(svg) => response::svg(svg),
            None => json_error(&IntakeError::NotFound),
        }
    }

    /// The form page, whose next post will carry `submission_id`.
    fn render(
        &self,
        lang: Lang,
        room: &Room,
        links: &PageLinks<'_>,
        submission_id: QuestionId,
        state: &FormState<'_>,
    ) -> String {
        page::render_form(lang, room, links, self.limits, &submission_id.to_string(), state)
    }

    async fn submit(&self, req: &Request, route_path: &str) -> Response<Body> {
        let (form, encoding) = match submission::decode(req.headers(), req.body().as_ref()) {
            Ok(decoded) => decoded,
            Err(IntakeError::PayloadTooLarge) if accepts_html(req.headers()) => {
                info!(
                    outcome = "rejected",
                    code = ErrorCode::PayloadTooLarge.as_str(),
                    "question refused"
                );
                // A paste far over the limit without JavaScript: give the text back, refused, rather than a bare
                // 413 that loses it.
                return match submission::decode_oversized_form(req.headers(), req.body().as_ref()) {
                    Some(form) => {
                        let lang = Lang::negotiate(form.lang.as_deref(), req.headers());
                        let text = form.text.clone().unwrap_or_default();
                        let e = IntakeError::TextTooLong {
                            max: self.limits.question_chars,
                            actual: text.chars().count(),
                        };
                        let kept = Kept {
                            nickname: form.nickname.clone().unwrap_or_default(),
                            room: form.room.clone(),
                            submission_id: form.submission_id(),
                            text,
                        };
                        self.form_error(lang, &kept, kept.submission_id, &e)
                    }
                    None => json_error(&IntakeError::PayloadTooLarge),
                };
            }
            Err(e) => {
                info!(outcome = "rejected", code = e.code().as_str(), "question refused");
                return self.error_response(req, &e);
            }
        };
        // A browser without JavaScript posts the form itself and wants a page back, not JSON.
        let as_html = encoding == Encoding::Form && accepts_html(req.headers());
        let lang = Lang::negotiate(form.lang.as_deref(), req.headers());
        let kept = Kept {
            text: form.text.clone().unwrap_or_default(),
            nickname: form.nickname.clone().unwrap_or_default(),
            room: form.room.clone(),
            submission_id: form.submission_id(),
        };
        let question = match form.into_question(&self.rooms, self.limits, jiff::Timestamp::now()) {
            Ok(question) => question,
            Err(e) => {
                info!(outcome = "rejected", code = e.code().as_str(), "question refused");
                return if as_html {
                    // This post published nothing, so keeping its id adds no risk, and the id still names the
                    // question the student is fixing: if an earlier attempt under it (a 503 page's) did reach the
                    // chat, the corrected resend is recognised as that question instead of being posted twice.
                    // An invalid or missing id is replaced by a new one.
                    self.form_error(lang, &kept, kept.submission_id, &e)
                } else {
                    json_error(&e)
                };
            }
        };
        if self.paused(&question.room).await {
            let e = IntakeError::RoomPaused;
            info!(outcome = "rejected", code = e.code().as_str(), "question refused");
            return if as_html {
                self.form_error(lang, &kept, kept.submission_id, &e)
            } else {
                json_error(&e)
            };
        }
        let span = info_span!("question", id = %question.id, room = %question.room);
        let published = self
            .publisher
            .publish(&QuestionMessage::from(&question))
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match published {
            Ok(message_id) => {
                info!(outcome = "queued", sns_message_id = %message_id, "question queued");
                if as_html {
                    return see_other_after_sending(
                        &self.form_link_from_root(kept.room.as_deref()),
                        lang,
                        &base_path(req, route_path),
                    );
                }
                json(
                    StatusCode::ACCEPTED,
                    &serde_json::json!({ "id": question.id, "status": "queued" }),
                )
            }
            Err(cause) => {
                error!(
                    outcome = "unavailable",
                    error = format!("{cause:#}"),
                    "question not queued"
                );
                let e = IntakeError::Unavailable(cause);
                if as_html {
                    // SNS may have taken the question even though its answer never reached us (a timeout after
                    // the publish). The page must then carry the id the question was published under, so that a
                    // resend is the same question, which the consumer posts once; a new id would post it twice.
                    // If the student edits the text before resending and the first publish did go through, the
                    // edit is the one dropped as a duplicate: the original question is in the chat, which is the
                    // better failure than the same question twice. The id is the published one, not merely the
                    // posted one, so a post from an old page without an id is covered too.
                    self.form_error(lang, &kept, Some(question.id), &e)
                } else {
                    json_error(&e)
                }
            }
        }
    }

    /// The relative link from the site root to the form of `room` (the default room's form is the root itself).
    fn form_link_from_root(&self, room: Option<&str>) -> String {
        match room.map(str::trim).and_then(|r| self.rooms.get(r)) {
            Some(room) if room != self.rooms.default_room() => format!("r/{}", room.name()),
            _ => "./".to_owned(),
        }
    }

    /// The form again, as the answer to a plain form post, with the student's text kept and the error explained;
    /// its next post carries `submission_id`, or a new id when there is none to keep.
    fn form_error(
        &self,
        lang: Lang,
        kept: &Kept,
        submission_id: Option<QuestionId>,
        e: &IntakeError,
    ) -> Response<Body> {
        let rooms = &self.rooms;
        let room = kept
            .room
            .as_deref()
            .and_then(|r| rooms.get(r.trim()))
            .unwrap_or(rooms.default_room());
        // This page is the answer to `POST /questions`, so links are relative to the root.
        let form = self.form_link_from_root(Some(room.name().as_ref()));
        let links = PageLinks {
            form: &form,
            ..LINKS_FROM_ROOT
        };
        let state = FormState {
            text: &kept.text,
            nickname: &kept.nickname,
            error: Some(e.code()),
            sent: false,
            indexable: false,
        };
        let submission_id = submission_id.unwrap_or_else(QuestionId::new_random);
        html_error(e, self.render(lang, room, &links, submission_id, &state))
    }

    fn error_response(&self, req: &Request, e: &IntakeError) -> Response<Body> {
        if matches!(e, IntakeError::NotFound) && req.method() == Method::GET && accepts_html(req.headers()) {
            let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
            return html(StatusCode::NOT_FOUND, page::render_not_found(lang));
        }
        json_error(e)
    }
}

/// The routes intake serves, by path.
enum Route<'a> {
    Form(Option<&'a str>),
    QrCode(&'a str),
    Join(&'a str),
    Favicon,
    Questions,
}

/// The links of a page served at the site root.
const LINKS_FROM_ROOT: PageLinks<'static> = PageLinks {
    action: "questions",
    form: "",
};

/// What the student typed, kept to put back into the form after an error.
struct Kept {
    text: String,
    nickname: String,
    room: Option<String>,
    /// The posted `submission_id` when it is a valid one.
    submission_id: Option<QuestionId>,
}

#[cfg(test)]
mod tests;
