//! HTTP conventions the handlers behind API Gateway share (the intake and the console API): the path to route on,
//! and a JSON answer.

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// The path to route on: the one API Gateway received, without a named stage (`$default` has none).
pub(crate) fn route_path(req: &Request) -> String {
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

/// A query parameter: from API Gateway's parsed parameters, or from the URI when the request did not come through
/// API Gateway (the local runner).
pub(crate) fn query_param(req: &Request, name: &str) -> Option<String> {
    if let Some(value) = req.query_string_parameters().first(name) {
        return Some(value.to_owned());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query()?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Escapes text for HTML (or XML) element content and double- or single-quoted attribute values.
pub fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// [`escape_html_into`] into a new string.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_html_into(&mut out, text);
    out
}
