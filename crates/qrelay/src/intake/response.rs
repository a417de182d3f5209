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
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; \
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

/// The cookie that lets the page after a plain form post say "sent" once: set with the redirect, cleared by the
/// page that reads it, so a reopened `?sent=1` link (history, a shared link, a reload) claims nothing. It holds
/// no identifier, only that a question was just queued.
pub(crate) const SENT_COOKIE: &str = "qrelay_sent";

/// Post/Redirect/Get after a plain form post, so that reloading the page can't send the question twice; the
/// one-time [`SENT_COOKIE`] for the site below `cookie_path` tells the next page to confirm.
pub(crate) fn see_other_after_sending(form_link: &str, lang: Lang, cookie_path: &str) -> Response<Body> {
    let location = format!("{form_link}?sent=1&lang={}", lang.code());
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    set_sent_cookie(&mut response, "1", 60, cookie_path);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Clears the one-time [`SENT_COOKIE`] once a page has used it.
pub(crate) fn clear_sent_cookie(response: &mut Response<Body>, cookie_path: &str) {
    set_sent_cookie(response, "", 0, cookie_path);
}

fn set_sent_cookie(response: &mut Response<Body>, value: &str, max_age: u32, path: &str) {
    let cookie = format!("{SENT_COOKIE}={value}; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Lax");
    if let Ok(cookie) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// `/favicon.ico`: browsers ask for it whatever the page says; a small icon answers instead of a JSON 404.
pub(crate) fn favicon() -> Response<Body> {
    let mut response = Response::new(Body::Binary(favicon_ico()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/x-icon"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A 16×16 icon in the ICO format (one 32-bit bitmap): the form's blue square with rounded corners.
fn favicon_ico() -> Vec<u8> {
    const SIZE: u32 = 16;
    let pixels = SIZE * SIZE * 4;
    let mask = SIZE * 4; // one bit per pixel, rows padded to 4 bytes
    let image = 40 + pixels + mask;
    let mut ico = Vec::with_capacity(22 + image as usize);
    ico.extend_from_slice(&[0, 0, 1, 0, 1, 0]); // reserved, type 1 (icon), one image
    ico.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0, 1, 0, 32, 0]); // 16×16, no palette, 1 plane, 32 bpp
    ico.extend_from_slice(&image.to_le_bytes());
    ico.extend_from_slice(&22u32.to_le_bytes()); // the image follows the directory
    // BITMAPINFOHEADER: the height counts the colour rows and the mask's.
    ico.extend_from_slice(&40u32.to_le_bytes());
    ico.extend_from_slice(&SIZE.to_le_bytes());
    ico.extend_from_slice(&(SIZE * 2).to_le_bytes());
    ico.extend_from_slice(&[1, 0, 32, 0]);
    ico.extend_from_slice(&[0; 4]); // BI_RGB
    ico.extend_from_slice(&pixels.to_le_bytes());
    ico.extend_from_slice(&[0; 16]);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let corner = (x.min(SIZE - 1 - x) + y.min(SIZE - 1 - y)) < 2;
            // BGRA, #0b57d0; transparent corners.
            ico.extend_from_slice(&if corner { [0, 0, 0, 0] } else { [0xd0, 0x57, 0x0b, 0xff] });
        }
    }
    ico.extend(std::iter::repeat_n(0u8, mask as usize));
    ico
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
