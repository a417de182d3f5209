//! The intake function: serves the question form and accepts questions, acknowledging one only after it has
//! been durably published.
//!
//! **Invariant:** a `202 queued` is sent only after [`QuestionPublisher::publish`] returned `Ok`.
//! **Invariant:** nothing from the request but the submitted fields reaches the published document or the logs:
//! no source address, user agent, cookie or other header.

mod error;
mod page;
mod qr;
mod submission;

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{Instrument, error, info, info_span};

pub use error::{IntakeError, MAX_BODY_BYTES};
pub use page::{FormState, Lang};
pub use submission::{Encoding, IntakeForm};

use crate::domain::{Limits, QuestionId, QuestionMessage, Room, Rooms};
use crate::publish::QuestionPublisher;

/// The intake function's handler with what it needs, built once per execution environment.
#[derive(Clone)]
pub struct Intake {
    rooms: Arc<Rooms>,
    limits: Limits,
    publisher: Arc<dyn QuestionPublisher>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("rooms", &self.rooms)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The routes intake serves, by path.
enum Route<'a> {
    Form(Option<&'a str>),
    QrCode(&'a str),
    Questions,
}

impl Intake {
    /// The handler for `rooms`, with `limits` on what students may type, publishing through `publisher`.
    pub fn new(rooms: Rooms, limits: Limits, publisher: Arc<dyn QuestionPublisher>) -> Self {
        Self {
            rooms: Arc::new(rooms),
            limits,
            publisher,
        }
    }

    /// Answers one HTTP request. Never fails and never panics on any input: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = route_path(&req);
        let route = match path.as_str() {
            "/" | "" => Route::Form(None),
            "/questions" => Route::Questions,
            p => match p
                .strip_prefix("/r/")
                .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            {
                Some((room, "")) if !room.is_empty() => Route::Form(Some(room)),
                Some((room, "qr.svg")) if !room.is_empty() => Route::QrCode(room),
                _ => return self.error_response(&req, &IntakeError::NotFound),
            },
        };
        match (route, req.method()) {
            (Route::Form(room), &Method::GET) => self.form(&req, room),
            (Route::QrCode(room), &Method::GET) => self.qr_code(&req, &path, room),
            (Route::Questions, &Method::POST) => self.submit(&req).await,
            (Route::Form(_) | Route::QrCode(_), _) => {
                self.error_response(&req, &IntakeError::MethodNotAllowed { allow: "GET" })
            }
            (Route::Questions, _) => self.error_response(&req, &IntakeError::MethodNotAllowed { allow: "POST" }),
        }
    }

    fn form(&self, req: &Request, room: Option<&str>) -> Response<Body> {
        let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
        let (room, links) = match room {
            None => (self.rooms.default_room(), Links::FROM_ROOT),
            Some(name) => match self.rooms.get(name) {
                Some(room) => (
                    room,
                    Links {
                        action: "../questions",
                        form: name.to_owned(),
                    },
                ),
                None => return self.error_response(req, &IntakeError::NotFound),
            },
        };
        let state = FormState {
            sent: query_param(req, "sent").is_some(),
            ..FormState::default()
        };
        html(StatusCode::OK, self.render(lang, room, &links, &state))
    }

    /// An SVG QR code of the room's form link, for the instructor to project.
    fn qr_code(&self, req: &Request, route_path: &str, room: &str) -> Response<Body> {
        if self.rooms.get(room).is_none() {
            return self.error_response(req, &IntakeError::NotFound);
        }
        let link = format!("{}/r/{room}", public_base_url(req, route_path));
        match qr::svg(&link) {
            Some(svg) => {
                let mut response = Response::new(Body::from(svg));
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
                headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                response
            }
            None => json_error(&IntakeError::NotFound),
        }
    }

    fn render(&self, lang: Lang, room: &Room, links: &Links, state: &FormState<'_>) -> String {
        let limits = self.limits;
        let id = QuestionId::new_random().to_string();
        let page_links = page::PageLinks {
            action: links.action,
            form: &links.form,
        };
        page::render_form(
            lang,
            room,
            &page_links,
            limits.question_chars,
            limits.nickname_chars,
            &id,
            state,
        )
    }

    async fn submit(&self, req: &Request) -> Response<Body> {
        let (form, encoding) = match submission::decode(req.headers(), req.body().as_ref()) {
            Ok(decoded) => decoded,
            Err(e) => {
                info!(outcome = "rejected", code = e.code(), "question refused");
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
        };
        let question = match form.into_question(&self.rooms, self.limits, jiff::Timestamp::now()) {
            Ok(question) => question,
            Err(e) => {
                info!(outcome = "rejected", code = e.code(), "question refused");
                return if as_html {
                    self.form_error(lang, &kept, &e)
                } else {
                    json_error(&e)
                };
            }
        };
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
                    return see_other_after_sending(&self.form_link_from_root(kept.room.as_deref()), lang);
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
                    self.form_error(lang, &kept, &e)
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

    /// The form again, as the answer to a plain form post, with the student's text kept and the error explained.
    fn form_error(&self, lang: Lang, kept: &Kept, e: &IntakeError) -> Response<Body> {
        let rooms = &self.rooms;
        let room = kept
            .room
            .as_deref()
            .and_then(|r| rooms.get(r.trim()))
            .unwrap_or(rooms.default_room());
        // This page is the answer to `POST /questions`, so links are relative to the root.
        let links = Links {
            action: "questions",
            form: self.form_link_from_root(Some(room.name().as_ref())),
        };
        let state = FormState {
            text: &kept.text,
            nickname: &kept.nickname,
            error: Some(e.code()),
            sent: false,
        };
        let mut response = html(e.status(), self.render(lang, room, &links, &state));
        add_error_headers(&mut response, e);
        response
    }

    fn error_response(&self, req: &Request, e: &IntakeError) -> Response<Body> {
        if matches!(e, IntakeError::NotFound) && req.method() == Method::GET && accepts_html(req.headers()) {
            let lang = Lang::negotiate(query_param(req, "lang").as_deref(), req.headers());
            return html(StatusCode::NOT_FOUND, page::render_not_found(lang));
        }
        json_error(e)
    }
}

/// Where a rendered form posts to and links back to, relative to the URL it is served at.
struct Links {
    action: &'static str,
    form: String,
}

impl Links {
    const FROM_ROOT: Links = Links {
        action: "questions",
        form: String::new(),
    };
}

/// What the student typed, kept to put back into the form after an error.
struct Kept {
    text: String,
    nickname: String,
    room: Option<String>,
}

/// A query parameter: from API Gateway's parsed parameters, or from the URI when the request did not come through
/// API Gateway (the local runner).
fn query_param(req: &Request, name: &str) -> Option<String> {
    if let Some(value) = req.query_string_parameters().first(name) {
        return Some(value.to_owned());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query()?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The path to route on: the one API Gateway received, without a named stage (`$default` has none).
fn route_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let stage = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.as_deref(),
        _ => None,
    };
    if let Some(stage) = stage.filter(|s| *s != "$default") {
        if let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
            if rest.is_empty() || rest.starts_with('/') {
                return if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest.to_owned()
                };
            }
        }
    }
    path.to_owned()
}

/// The site's public address as the client reached it: scheme, host and any stage or base path in front of our
/// routes (what the raw path has before `route_path`).
fn public_base_url(req: &Request, route_path: &str) -> String {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let local = host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if local { "http" } else { "https" });
    let raw = req.raw_http_path();
    let full = if raw.is_empty() { req.uri().path() } else { raw };
    let prefix = full.strip_suffix(route_path).unwrap_or_default().trim_end_matches('/');
    format!("{scheme}://{host}{prefix}")
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Each rendered form carries a fresh submission id: a cached copy would reuse it for another question.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_error(e: &IntakeError) -> Response<Body> {
    let mut response = json(e.status(), &e.to_json());
    add_error_headers(&mut response, e);
    response
}

fn add_error_headers(response: &mut Response<Body>, e: &IntakeError) {
    let headers = response.headers_mut();
    match e {
        IntakeError::MethodNotAllowed { allow } => {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        IntakeError::Unavailable(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(IntakeError::RETRY_AFTER_SECS));
        }
        _ => {}
    }
}

/// Post/Redirect/Get after a plain form post, so that reloading the page can't send the question twice.
fn see_other_after_sending(form_link: &str, lang: Lang) -> Response<Body> {
    let location = format!("{form_link}?sent=1&lang={}", lang.code());
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests;
