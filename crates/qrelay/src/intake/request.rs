//! What intake reads from a request besides its body: the path to route on, query parameters, the site's public
//! address and whether the client wants HTML. Requests arrive from API Gateway (with a stage, parsed query
//! parameters and the raw path) or from the local runner (a plain URI), and these helpers read both alike.

use http::{HeaderMap, header};
use lambda_http::{Request, RequestExt};

pub(crate) use crate::web::{query_param, route_path};

/// The site's public address as the client reached it: scheme, host and any stage or base path in front of our
/// routes (what the raw path has before `route_path`).
pub(crate) fn public_base_url(req: &Request, route_path: &str) -> String {
    let headers = req.headers();
    // API Gateway and browsers send Host; a request built from a full URI (a test, a proxy) has it there.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
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

/// The path in front of our routes (API Gateway's stage or a base path), ending in `/`: the `Path` of a cookie
/// meant for every page of the site.
pub(crate) fn base_path(req: &Request, route_path: &str) -> String {
    let raw = req.raw_http_path();
    let full = if raw.is_empty() { req.uri().path() } else { raw };
    let prefix = full.strip_suffix(route_path).unwrap_or_default().trim_end_matches('/');
    format!("{prefix}/")
}

/// Whether the request carries the cookie `name=value`.
pub(crate) fn has_cookie(req: &Request, name: &str, value: &str) -> bool {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().split_once('=') == Some((name, value)))
}

/// Whether the client asked for HTML (a browser), rather than JSON (the form's script, or any other client).
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}
