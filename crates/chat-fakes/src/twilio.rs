//! A fake of Twilio's Programmable Voice REST API, as the escalation uses it: `POST
//! /2010-04-01/Accounts/{AccountSid}/Calls.json` with HTTP basic auth (account SID and auth token) and the form
//! fields `To`, `From` and `Twiml`, answered **201** with the call's JSON (`sid` `CA…`, `status` `queued`); a wrong
//! account or token **401** `{"code": 20003, "message": "Authenticate"}`; a missing field **400** `{"code": 21201}`
//! (`To`) or `{"code": 21213}` (`From`); a number that is not E.164 **400** `{"code": 21211}`.
//!
//! The fake records each call and plays the callee: [`Twilio::press`] posts the `<Gather>` callback a real call
//! would (to the `action` URL in the call's TwiML, with `Digits`, `CallSid`, `From`, `To`, `AccountSid`), signed as
//! Twilio signs it: `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + each parameter's name and value,
//! sorted by name)). [`Twilio::press_forged`] sends the same with a signature made with another key.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::server::lock;
use crate::{Faults, Running};

/// A call the fake placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub twiml: String,
}

/// The fake's state.
#[derive(Debug)]
pub struct Twilio {
    pub account_sid: String,
    pub auth_token: String,
    calls: Mutex<Vec<Call>>,
    pub faults: Faults,
}

/// What a callback post got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub status: u16,
    pub body: String,
}

impl Twilio {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: "fake-auth-token-0123456789abcdef".into(),
            calls: Mutex::new(Vec::new()),
            faults: Faults::default(),
        })
    }

    pub async fn serve(self: &Arc<Self>) -> Running {
        Running::serve(
            Router::new()
                .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call))
                .with_state(self.clone()),
        )
        .await
    }

    /// The secret's JSON for this account, as the escalation reads it.
    pub fn secret_json(&self) -> String {
        json!({ "account_sid": self.account_sid, "auth_token": self.auth_token }).to_string()
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The callee of call `index` presses `digits`: the `<Gather>` callback, signed with the account's token.
    pub async fn press(&self, index: usize, digits: &str) -> CallbackAnswer {
        self.gather_callback(index, digits, &self.auth_token).await
    }

    /// The same callback signed with another key, as a forger would send it.
    pub async fn press_forged(&self, index: usize, digits: &str) -> CallbackAnswer {
        self.gather_callback(index, digits, "not-the-auth-token").await
    }

    async fn gather_callback(&self, index: usize, digits: &str, key: &str) -> CallbackAnswer {
        let call = self
            .calls()
            .get(index)
            .cloned()
            .unwrap_or_else(|| panic!("no call {index}"));
        let action = gather_action(&call.twiml).unwrap_or_else(|| panic!("call {index} has no <Gather action>"));
        let params = vec![
            ("AccountSid".to_owned(), self.account_sid.clone()),
            ("CallSid".to_owned(), call.sid.clone()),
            ("CallStatus".to_owned(), "in-progress".to_owned()),
            ("Digits".to_owned(), digits.to_owned()),
            ("From".to_owned(), call.from.clone()),
            ("To".to_owned(), call.to.clone()),
        ];
        let signature = sign(key, &action, &params);
        post_form(&action, &params, &signature).await
    }
}

/// Twilio's request signature.
pub fn sign(key: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()).as_ref())
}

/// The `action` attribute of the TwiML's `<Gather>`, unescaped.
fn gather_action(twiml: &str) -> Option<String> {
    let gather = &twiml[twiml.find("<Gather")?..];
    let start = gather.find("action=\"")? + "action=\"".len();
    let end = gather[start..].find('"')?;
    Some(
        gather[start..start + end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Posts a form to an `http://127.0.0.1…` URL (the test's callback server) over one plain connection.
async fn post_form(url: &str, params: &[(String, String)], signature: &str) -> CallbackAnswer {
    let rest = url
        .strip_prefix("http://")
        .expect("a loopback http:// callback URL in tests");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let body = serde_urlencoded::to_string(params).expect("form");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect to the callback");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {signature}\r\nUser-Agent: TwilioProxy/1.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    CallbackAnswer { status, body }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({ "code": code, "message": message, "status": status.as_u16(),
                       "more_info": format!("https://www.twilio.com/docs/errors/{code}") });
    (status, axum::Json(body)).into_response()
}

fn e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or_default();
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

async fn create_call(
    State(fake): State<Arc<Twilio>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(status) = fake.faults.failing() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, 20500, "Internal Server Error");
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", fake.account_sid, fake.auth_token))
    );
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorized || sid != fake.account_sid {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(to) = field("To") else {
        return error(StatusCode::BAD_REQUEST, 21201, "No 'To' number is specified");
    };
    let Some(from) = field("From") else {
        return error(StatusCode::BAD_REQUEST, 21213, "No 'From' number is specified");
    };
    if !e164(&to) || !e164(&from) {
        return error(StatusCode::BAD_REQUEST, 21211, "Invalid 'To' Phone Number");
    }
    let Some(twiml) = field("Twiml").or_else(|| field("Url")) else {
        return error(StatusCode::BAD_REQUEST, 21205, "Url or Twiml is required");
    };
    let mut calls = lock(&fake.calls);
    let call_sid = format!("CA{:032x}", calls.len() + 1);
    calls.push(Call {
        sid: call_sid.clone(),
        to: to.clone(),
        from: from.clone(),
        twiml,
    });
    (
        StatusCode::CREATED,
        axum::Json(
            json!({ "sid": call_sid, "account_sid": fake.account_sid, "to": to, "from": from,
                           "status": "queued", "direction": "outbound-api" }),
        ),
    )
        .into_response()
}
