//! The responses intake sends and the headers each kind carries: HTML pages, JSON answers and errors, the QR
//! code's SVG and the redirect after a plain form post. Kept together so that the caching and security headers
//! of every answer can be read in one place.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

pub(crate) use crate::web::json;

use super::error::IntakeError;
use super::lang::Lang;

/// An HTML page.
pub(crate) fn html(status: StatusCode, body: String) -> Response<Body> {
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

/// An HTML page explaining `e`, with the headers `e` calls for.
pub(crate) fn html_error(e: &IntakeError, body: String) -> Response<Body> {
    let mut response = html(e.status(), body);
    add_error_headers(&mut response, e);
    response
}

/// `e` as the README's JSON error body, with the headers `e` calls for.
pub(crate) fn json_error(e: &IntakeError) -> Response<Body> {
    let mut response = json(e.status(), &e.to_json());
    add_error_headers(&mut response, e);
    response
}

/// An SVG image that may be cached: a room's QR code changes only with the site's address.
pub(crate) fn svg(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Post/Redirect/Get after a plain form post, so that reloading the page can't send the question twice.
pub(crate) fn see_other_after_sending(form_link: &str, lang: Lang) -> Response<Body> {
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
