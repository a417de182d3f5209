//! When the chat stays down during class: phone calls through a rotation of staff numbers (Twilio's REST API)
//! until someone presses 1, or the alarms return to OK.
//!
//! The escalation function hears the alarm topic (CloudWatch's notifications, as SNS delivers them) and a
//! one-minute tick (EventBridge Scheduler). An *incident* starts when the first of the chat-down alarms goes into
//! ALARM and ends when the last of them is OK again. Once it has lasted `ESCALATE_AFTER_MINUTES`, each tick calls
//! the next number if the last call was not acknowledged within `ACK_WAIT_MINUTES`; a call says, in Japanese or
//! English, that the chat is down and asks to press 1. The key press comes back through Twilio's `<Gather>`
//! callback, which is refused unless it carries Twilio's signature (`X-Twilio-Signature`, HMAC-SHA1 with the
//! account's auth token over the URL and the posted parameters).
//!
//! **Invariant:** the incident is one item in the instructor's table, changed only by conditional writes on its
//! version, so two ticks (or a tick and a callback) racing can't both place the same call.
//! **Invariant:** nothing here concerns a student; the logs show staff numbers masked to their last four digits.

mod store;
mod twilio;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

pub use store::{EscalationStore, Versioned};
pub use twilio::{API_BASE as TWILIO_API, CallError, Caller, TwilioCaller, TwilioCredentials, TwilioSecret, signature};

use crate::control::StoreError;

/// A phone number in E.164 form (`+` then 7 to 15 digits, the first not 0): what Twilio and SNS SMS take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let digits = raw.strip_prefix('+').unwrap_or_default();
        let ok =
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not a phone number in E.164 form, like +819012345678"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as logs show it: its last four digits only.
    pub fn masked(&self) -> String {
        let tail = &self.0[self.0.len().saturating_sub(4)..];
        format!("+…{tail}")
    }
}

/// The spoken message's language (`ESCALATION_LANGUAGE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Voice {
    #[default]
    Ja,
    En,
}

/// What the escalation function was configured with.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// `ESCALATION_PHONES`: who is called, in order, round after round.
    pub phones: Vec<Phone>,
    /// `ESCALATE_AFTER_MINUTES`: how long an incident lasts before the first call.
    pub after: Duration,
    /// `ACK_WAIT_MINUTES`: how long a call waits for its acknowledgement before the next number is called.
    pub ack_wait: Duration,
    /// `ESCALATION_ALARMS`: the alarms whose ALARM state means the chat is down (others are ignored).
    pub alarms: BTreeSet<String>,
    /// `ESCALATION_CALLBACK_URL`: the API route Twilio posts the key press to.
    pub callback_url: String,
    pub voice: Voice,
    /// At most this many rounds through the numbers per incident, so a forgotten incident can't call all night.
    pub rounds: u32,
}

/// The chat-down incident, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The alarms in ALARM now; the incident is on while this is not empty.
    pub alarms: BTreeSet<String>,
    /// When the first of them went into ALARM.
    pub since: Option<Timestamp>,
    /// Names this incident in its calls' callbacks, so a late key press can't acknowledge the next incident.
    pub id: Option<String>,
    /// Calls placed in this incident.
    pub calls: u32,
    pub last_call_at: Option<Timestamp>,
    /// Who acknowledged (masked) and when.
    pub acknowledged: Option<(String, Timestamp)>,
}

/// A CloudWatch alarm's state change, as its SNS notification carries it.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmChange {
    #[serde(rename = "AlarmName")]
    pub alarm_name: String,
    #[serde(rename = "NewStateValue")]
    pub new_state: String,
}

/// Why an escalation event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the incident changed under us too many times in a row")]
    Contended,
    #[error("not an escalation event: {0}")]
    Event(String),
}

/// How often a read-modify-write of the incident is tried when others keep changing it.
const ATTEMPTS: usize = 5;

/// The escalation function's handler.
pub struct Escalation {
    rotation: Rotation,
    store: Arc<dyn EscalationStore>,
    caller: Arc<dyn Caller>,
}

impl std::fmt::Debug for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escalation")
            .field("phones", &self.rotation.phones.len())
            .field("after", &self.rotation.after)
            .finish_non_exhaustive()
    }
}

/// The answer to Twilio's callback: a status and the TwiML to speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub status: u16,
    pub twiml: String,
}

impl Escalation {
    pub fn new(rotation: Rotation, store: Arc<dyn EscalationStore>, caller: Arc<dyn Caller>) -> Self {
        Self {
            rotation,
            store,
            caller,
        }
    }

    /// Reads, changes and writes the incident back on its version, again if someone else wrote in between.
    async fn update<T>(
        &self,
        mut change: impl FnMut(&mut Incident) -> Option<T>,
    ) -> Result<Option<(T, Incident)>, EscalationError> {
        for _ in 0..ATTEMPTS {
            let Versioned {
                value: mut incident,
                version,
            } = self.store.incident().await?;
            let Some(out) = change(&mut incident) else {
                return Ok(None);
            };
            if self.store.save_incident(&incident, version).await? {
                return Ok(Some((out, incident)));
            }
        }
        Err(EscalationError::Contended)
    }

    /// An alarm changed state: an incident starts with the first chat-down alarm in ALARM and ends with the last
    /// one back to OK.
    pub async fn alarm(&self, change: &AlarmChange, now: Timestamp) -> Result<(), EscalationError> {
        if !self.rotation.alarms.contains(&change.alarm_name) {
            info!(alarm = %change.alarm_name, "not a chat-down alarm: no escalation");
            return Ok(());
        }
        let alarming = change.new_state == "ALARM";
        let name = change.alarm_name.clone();
        let updated = self
            .update(|incident| {
                let changed = if alarming {
                    incident.alarms.insert(name.clone())
                } else {
                    incident.alarms.remove(&name)
                };
                if !changed {
                    return None;
                }
                if alarming && incident.since.is_none() {
                    *incident = Incident {
                        alarms: incident.alarms.clone(),
                        since: Some(now),
                        id: Some(uuid::Uuid::new_v4().to_string()),
                        ..Incident::default()
                    };
                } else if incident.alarms.is_empty() {
                    *incident = Incident::default();
                }
                Some(())
            })
            .await?;
        match updated {
            Some((_, incident)) if incident.alarms.is_empty() => {
                info!(alarm = %change.alarm_name, "the chat-down alarms are all OK: the incident is over, no more calls")
            }
            Some((_, incident)) => info!(alarm = %change.alarm_name, state = %change.new_state,
                                         alarms = incident.alarms.len(), "incident updated"),
            None => info!(alarm = %change.alarm_name, state = %change.new_state, "nothing changed"),
        }
        Ok(())
    }

    /// The minute's tick: places the next call if the incident is old enough, unacknowledged, and the last call
    /// went unanswered for `ack_wait`. Returns the number called.
    pub async fn tick(&self, now: Timestamp) -> Result<Option<Phone>, EscalationError> {
        let rotation = &self.rotation;
        if rotation.phones.is_empty() {
            return Ok(None);
        }
        let max_calls = rotation.rounds.max(1) * rotation.phones.len() as u32;
        let decided = self
            .update(|incident| {
                let since = incident.since?;
                if incident.acknowledged.is_some() || incident.calls >= max_calls {
                    return None;
                }
                if now.duration_since(since).unsigned_abs() < rotation.after || now < since {
                    return None;
                }
                if let Some(last) = incident.last_call_at {
                    if now.duration_since(last).unsigned_abs() < rotation.ack_wait || now < last {
                        return None;
                    }
                }
                let phone = rotation.phones[incident.calls as usize % rotation.phones.len()].clone();
                incident.calls += 1;
                incident.last_call_at = Some(now);
                Some(phone)
            })
            .await?;
        let Some((phone, incident)) = decided else {
            return Ok(None);
        };
        let minutes = incident
            .since
            .map_or(0, |since| now.duration_since(since).as_secs().max(0) / 60);
        let twiml = self.call_twiml(incident.id.as_deref().unwrap_or_default(), minutes);
        // The call is decided (written) before it is placed: a tick racing this one sees it and waits.
        match self.caller.call(&phone, &twiml).await {
            Ok(sid) => info!(to = %phone.masked(), call = incident.calls, call_sid = %sid, "escalation call placed"),
            Err(e) => error!(to = %phone.masked(), call = incident.calls, error = %e,
                             "escalation call failed; the next number is called after the wait"),
        }
        Ok(Some(phone))
    }

    /// Twilio's `<Gather>` callback: `query` is the callback URL's query string, `form` the posted parameters,
    /// `signature` the `X-Twilio-Signature` header. Only a correctly signed "1" for the current incident
    /// acknowledges it.
    pub async fn callback(
        &self,
        auth_token: &str,
        query: &str,
        form: &[(String, String)],
        signature_header: Option<&str>,
        now: Timestamp,
    ) -> Result<CallbackAnswer, EscalationError> {
        let url = if query.is_empty() {
            self.rotation.callback_url.clone()
        } else {
            format!("{}?{query}", self.rotation.callback_url)
        };
        let valid = signature_header.is_some_and(|s| twilio::verify(auth_token, &url, form, s));
        if !valid {
            warn!(
                signed = signature_header.is_some(),
                "a Twilio callback without a valid signature: refused"
            );
            return Ok(CallbackAnswer {
                status: 403,
                twiml: twiml_say(self.rotation.voice, "Forbidden."),
            });
        }
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let param =
            |list: &[(String, String)], name: &str| list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let incident_id = param(&params, "incident");
        let digits = param(form, "Digits");
        let who = param(form, "To")
            .and_then(|to| Phone::parse(&to).ok())
            .map_or_else(|| "unknown".to_owned(), |p| p.masked());
        if digits.as_deref() != Some("1") {
            info!(from = %who, "an escalation call ended without the key 1");
            return Ok(CallbackAnswer {
                status: 200,
                twiml: twiml_say(self.rotation.voice, words(self.rotation.voice).not_acknowledged),
            });
        }
        let acknowledged = self
            .update(|incident| {
                if incident.id.is_none() || incident.id != incident_id || incident.acknowledged.is_some() {
                    return None;
                }
                incident.acknowledged = Some((who.clone(), now));
                Some(())
            })
            .await?;
        let text = match acknowledged {
            Some(_) => {
                info!(by = %who, "escalation acknowledged: no more calls for this incident");
                words(self.rotation.voice).acknowledged
            }
            None => {
                info!(by = %who, "a key press for an incident that is over or acknowledged already");
                words(self.rotation.voice).already
            }
        };
        Ok(CallbackAnswer {
            status: 200,
            twiml: twiml_say(self.rotation.voice, text),
        })
    }

    fn call_twiml(&self, incident: &str, minutes: i64) -> String {
        let voice = self.rotation.voice;
        let w = words(voice);
        let action = format!(
            "{}?{}",
            self.rotation.callback_url,
            serde_urlencoded::to_string([("incident", incident)]).unwrap_or_default()
        );
        format!(
            "<Response><Gather numDigits=\"1\" timeout=\"10\" method=\"POST\" action=\"{}\"><Say language=\"{}\">{}</Say>\
             </Gather><Say language=\"{}\">{}</Say></Response>",
            xml_escape(&action),
            language(voice),
            xml_escape(&(w.call)(minutes)),
            language(voice),
            xml_escape(w.no_key),
        )
    }
}

struct Words {
    call: fn(i64) -> String,
    no_key: &'static str,
    acknowledged: &'static str,
    already: &'static str,
    not_acknowledged: &'static str,
}

const JA: Words = Words {
    call: |m| {
        format!(
            "キューリレーからのお知らせです。授業のチャットが {m} 分以上止まっていて、質問が届いていません。\
             対応できる場合は 1 を押してください。"
        )
    },
    no_key: "入力がありませんでした。次の担当者に電話します。",
    acknowledged: "ありがとうございます。対応をお願いします。これ以上の電話はしません。",
    already: "この件はすでに対応済みか、終わっています。",
    not_acknowledged: "確認されませんでした。",
};

const EN: Words = Words {
    call: |m| {
        format!(
            "This is qrelay. The class chat has been down for {m} minutes or more, and questions are waiting. \
             Press 1 if you will handle it."
        )
    },
    no_key: "No key was pressed. The next person on the rotation will be called.",
    acknowledged: "Thank you. Nobody else will be called for this incident.",
    already: "This incident is over or acknowledged already.",
    not_acknowledged: "Not acknowledged.",
};

fn words(voice: Voice) -> &'static Words {
    match voice {
        Voice::Ja => &JA,
        Voice::En => &EN,
    }
}

fn language(voice: Voice) -> &'static str {
    match voice {
        Voice::Ja => "ja-JP",
        Voice::En => "en-US",
    }
}

fn twiml_say(voice: Voice, text: &str) -> String {
    format!(
        "<Response><Say language=\"{}\">{}</Say></Response>",
        language(voice),
        xml_escape(text)
    )
}

/// TwiML is XML: the same five entities as HTML.
use crate::web::escape_html as xml_escape;

impl Escalation {
    /// One invocation of the escalation function, whichever of its three sources sent it: the alarm topic (an SNS
    /// event), the minute's schedule (`{"tick": true}`), or Twilio's callback through API Gateway (an HTTP API
    /// event, answered with TwiML). `secret` gives the auth token that signs the callback.
    pub async fn handle(
        &self,
        event: serde_json::Value,
        secret: &TwilioSecret,
        now: Timestamp,
    ) -> Result<serde_json::Value, EscalationError> {
        if event.get("requestContext").is_some() {
            let request: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_value(event)
                .map_err(|e| EscalationError::Event(format!("an HTTP event that can't be read: {e}")))?;
            let answer = self.http_callback(&request, secret, now).await?;
            return Ok(serde_json::json!({
                "statusCode": answer.status,
                "headers": { "content-type": "text/xml; charset=utf-8", "cache-control": "no-store" },
                "body": answer.twiml,
            }));
        }
        if event.get("Records").is_some() {
            let sns: aws_lambda_events::sns::SnsEvent = serde_json::from_value(event)
                .map_err(|e| EscalationError::Event(format!("an SNS event that can't be read: {e}")))?;
            for change in alarm_changes(&sns)? {
                self.alarm(&change, now).await?;
            }
            return Ok(serde_json::json!({ "alarms": sns.records.len() }));
        }
        if event.get("tick") == Some(&serde_json::Value::Bool(true)) {
            let called = self.tick(now).await?;
            return Ok(serde_json::json!({ "called": called.map(|p| p.masked()) }));
        }
        Err(EscalationError::Event(
            "expected an SNS alarm notification, {\"tick\": true} or a Twilio callback".into(),
        ))
    }

    async fn http_callback(
        &self,
        request: &aws_lambda_events::apigw::ApiGatewayV2httpRequest,
        secret: &TwilioSecret,
        now: Timestamp,
    ) -> Result<CallbackAnswer, EscalationError> {
        use base64::Engine as _;
        let body = request.body.as_deref().unwrap_or_default();
        let body = if request.is_base64_encoded {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default();
            String::from_utf8(bytes).unwrap_or_default()
        } else {
            body.to_owned()
        };
        let Ok(form) = serde_urlencoded::from_str::<Vec<(String, String)>>(&body) else {
            return Ok(CallbackAnswer {
                status: 400,
                twiml: twiml_say(self.rotation.voice, "Bad request."),
            });
        };
        let signature_header = request.headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
        let token = match secret.get().await {
            Ok(credentials) => credentials.auth_token.clone(),
            Err(e) => {
                error!(error = %e, "the Twilio secret could not be read: the callback can't be verified");
                return Ok(CallbackAnswer {
                    status: 503,
                    twiml: twiml_say(self.rotation.voice, "Unavailable."),
                });
            }
        };
        let query = request.raw_query_string.as_deref().unwrap_or_default();
        self.callback(&token, query, &form, signature_header, now).await
    }
}

/// The alarm changes an SNS event carries (CloudWatch's notification JSON in each record's `Message`).
pub fn alarm_changes(event: &aws_lambda_events::sns::SnsEvent) -> Result<Vec<AlarmChange>, EscalationError> {
    event
        .records
        .iter()
        .map(|r| {
            serde_json::from_str(&r.sns.message)
                .map_err(|e| EscalationError::Event(format!("an SNS message that is not an alarm notification: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests;
