//! The instructor's console in a deployed stack: the first instructor signs in through the stack's user pool
//! (Cognito's JSON API, as the console page calls it), the ID token's issuer and audience are the ones the console
//! function was configured with, the console's real binary answers a request carrying the token's claims (as API
//! Gateway's JWT authorizer hands them on) and refuses one without, and a room it pauses is refused by a new
//! intake process with `409 room_paused`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::Context;
use super::journey::Plan;
use super::recorder::Call;
use super::report::Report;
use super::stack::{Stack, cognito};
use super::wiring::USER_POOL;

/// The temporary password the rehearsal gives the first instructor (Cognito would e-mail its own), and the one
/// chosen at the first sign-in.
const TEMPORARY: &str = "Rehearsal-Temporary-1!";
const CHOSEN: &str = "Rehearsal-Chosen-Passw0rd!";

/// Runs the check; returns the AWS calls of the processes it started, by binary, for the IAM replay.
pub(crate) async fn check(
    context: &Context<'_>,
    stack: &Stack,
    environments: &BTreeMap<String, BTreeMap<String, String>>,
    routes: &[(String, String)],
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<Vec<(String, Vec<Call>)>> {
    let console_env = environments
        .get("console")
        .context("the stack has no console function")?;
    let client_id = console_env
        .get("COGNITO_CLIENT_ID")
        .context("the console has no COGNITO_CLIENT_ID")?;
    let issuer = console_env
        .get("COGNITO_ISSUER")
        .context("the console has no COGNITO_ISSUER")?;
    let pool_id = stack.reference(USER_POOL)?;
    let endpoint = &stack.endpoint;

    let username = if stack.conditions.get("HasInstructorEmail").copied().unwrap_or(false) {
        let email = stack.parameters.get("InstructorEmail").cloned().unwrap_or_default();
        report.note(format!(
            "the first instructor, {email}, was created by the stack (InstructorEmail)"
        ));
        email
    } else {
        let email = "rehearsal-instructor@example.com".to_owned();
        cognito(
            endpoint,
            "AdminCreateUser",
            &json!({ "UserPoolId": pool_id, "Username": email, "MessageAction": "SUPPRESS",
                     "UserAttributes": [{ "Name": "email", "Value": email }] }),
        )
        .await?;
        report.note(format!(
            "no InstructorEmail: an instructor was added as the README says (admin-create-user): {email}"
        ));
        email
    };
    cognito(
        endpoint,
        "AdminSetUserPassword",
        &json!({ "UserPoolId": pool_id, "Username": username, "Password": TEMPORARY, "Permanent": false }),
    )
    .await?;
    let started = cognito(
        endpoint,
        "InitiateAuth",
        &json!({ "ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH",
                 "AuthParameters": { "USERNAME": username, "PASSWORD": TEMPORARY } }),
    )
    .await?;
    report.check(
        started["ChallengeName"] == "NEW_PASSWORD_REQUIRED",
        format!(
            "the first sign-in with the temporary password asks for a new one ({})",
            started["ChallengeName"]
        ),
    );
    let done = cognito(
        endpoint,
        "RespondToAuthChallenge",
        &json!({ "ClientId": client_id, "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": started["Session"],
                 "ChallengeResponses": { "USERNAME": username, "NEW_PASSWORD": CHOSEN } }),
    )
    .await?;
    let token = done["AuthenticationResult"]["IdToken"]
        .as_str()
        .context("no ID token after the new password")?;
    let claims = claims_of(token)?;
    report.check(
        claims["iss"] == issuer.as_str() && claims["aud"] == client_id.as_str(),
        format!(
            "the ID token's issuer and audience ({}, {}) are the console's COGNITO_ISSUER and COGNITO_CLIENT_ID",
            claims["iss"], claims["aud"]
        ),
    );

    let mut console = super::start_function(context, stack, context.spec("console")?, console_env).await?;
    let overview = console
        .invoke(api_event("GET", "/instructor/api/overview", None, &claims))
        .await?;
    let answer = body_of(&overview.body);
    let rooms: Vec<&str> = answer["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["room"].as_str())
        .collect();
    report.check(
        overview.body["statusCode"] == 200
            && rooms.contains(&plan.room.as_str())
            && answer["instructor"] == username.as_str(),
        format!(
            "the console answers the signed-in instructor {}: rooms {rooms:?}, instructor {}",
            overview.body["statusCode"], answer["instructor"]
        ),
    );
    let anonymous = console
        .invoke(api_event("GET", "/instructor/api/overview", None, &json!({})))
        .await?;
    report.check(
        anonymous.body["statusCode"] == 401,
        format!(
            "without verified claims (a route left without the authorizer) it answers {}",
            anonymous.body["statusCode"]
        ),
    );

    let room_path = format!("/instructor/api/rooms/{}", plan.room);
    let paused = console
        .invoke(api_event(
            "PUT",
            &room_path,
            Some(json!({ "state": "paused" })),
            &claims,
        ))
        .await?;
    report.check(
        paused.body["statusCode"] == 200,
        format!("PUT {room_path} paused answers {}", paused.body["statusCode"]),
    );
    // A new intake process: the journey's caches the room as open for 10 s.
    let mut intake = super::start_function(context, stack, context.spec("intake")?, &environments["intake"]).await?;
    let (method, path) = routes
        .iter()
        .find(|(method, _)| method == "POST")
        .context("the API has no POST route for questions")?;
    let refused = intake
        .invoke(super::journey::http_event(
            method,
            path,
            path,
            Some(&json!({ "text": "is the room paused?", "room": plan.room }).to_string()),
        ))
        .await?;
    let reply = body_of(&refused.body);
    report.check(
        refused.body["statusCode"] == 409 && reply["error"]["code"] == "room_paused",
        format!(
            "the intake refuses a question to the paused room: {} {}",
            refused.body["statusCode"], reply["error"]["code"]
        ),
    );
    let reopened = console
        .invoke(api_event("PUT", &room_path, Some(json!({ "state": "open" })), &claims))
        .await?;
    report.check(
        reopened.body["statusCode"] == 200,
        format!("PUT {room_path} open answers {}", reopened.body["statusCode"]),
    );
    Ok(vec![
        ("console".to_owned(), console.calls()),
        ("intake".to_owned(), intake.calls()),
    ])
}

/// The claims of a JWT as API Gateway's JWT authorizer hands them on: every value a string.
fn claims_of(token: &str) -> anyhow::Result<Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))?;
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes)?;
    Ok(claims
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, Value::String(s)),
            other => (k, Value::String(other.to_string())),
        })
        .collect())
}

/// An API Gateway v2 event for the console API, carrying `claims` as the JWT authorizer does.
fn api_event(method: &str, path: &str, body: Option<Value>, claims: &Value) -> Value {
    let mut event: Value =
        serde_json::from_str(&crate::samples::event("console-overview.json")).expect("a sample console event");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims.clone();
    event["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    event
}

/// The JSON body of a function's HTTP answer.
fn body_of(answer: &Value) -> Value {
    answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default()
}
