//! Turning the body of `POST /questions` into a [`Question`]: content negotiation, size limit, JSON or
//! form-encoded decoding, then parsing every field into its domain type.

use http::HeaderMap;
use jiff::Timestamp;
use serde::Deserialize;

use super::error::{IntakeError, MAX_BODY_BYTES};
use crate::domain::{Limits, Nickname, Question, QuestionId, QuestionText, Rooms};

/// How the body was encoded; a form-encoded post from a browser without JavaScript is answered with HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Form,
}

/// The fields a student submits, as they arrive. Unknown fields are ignored so that an older function keeps
/// accepting posts from a newer form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IntakeForm {
    pub(crate) text: Option<String>,
    pub(crate) room: Option<String>,
    pub(crate) nickname: Option<String>,
    /// A UUID v4 chosen by the form for this question, kept across the student's retries so that a retry after a
    /// lost answer is recognised downstream as the same question.
    submission_id: Option<String>,
    /// The page's language, so that a form posted without JavaScript is answered in it.
    pub(crate) lang: Option<String>,
}

/// Decodes the body according to its `Content-Type`.
pub(crate) fn decode(headers: &HeaderMap, body: &[u8]) -> Result<(IntakeForm, Encoding), IntakeError> {
    let encoding = encoding(headers)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(IntakeError::PayloadTooLarge);
    }
    let form = match encoding {
        Encoding::Json => serde_json::from_slice(body).map_err(|e| IntakeError::MalformedBody(e.to_string()))?,
        Encoding::Form => serde_urlencoded::from_bytes(body).map_err(|e| IntakeError::MalformedBody(e.to_string()))?,
    };
    Ok((form, encoding))
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, IntakeError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(IntakeError::UnsupportedMediaType)?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        _ => Err(IntakeError::UnsupportedMediaType),
    }
}

/// Largest form-encoded body still read to give its text back after refusing it as too large (a no-JS paste far
/// over the limit): kept text is better than a bare 413, and nothing from it is published.
pub(crate) const MAX_KEPT_FORM_BYTES: usize = 60 * 1024;

/// The fields of a form-encoded `body` over [`MAX_BODY_BYTES`] but within [`MAX_KEPT_FORM_BYTES`], to put back
/// into the form; `None` for any other body.
pub(crate) fn decode_oversized_form(headers: &HeaderMap, body: &[u8]) -> Option<IntakeForm> {
    if encoding(headers).ok()? != Encoding::Form || body.len() > MAX_KEPT_FORM_BYTES {
        return None;
    }
    serde_urlencoded::from_bytes(body).ok()
}

impl IntakeForm {
    /// The posted `submission_id`, if it is one qrelay could have made (a UUID v4); `None` when absent or invalid.
    pub(crate) fn submission_id(&self) -> Option<QuestionId> {
        self.submission_id.as_deref().and_then(QuestionId::parse)
    }

    /// Parses every field; the question gets the submission id the form chose, or a new one.
    pub(crate) fn into_question(self, rooms: &Rooms, limits: Limits, now: Timestamp) -> Result<Question, IntakeError> {
        let text = QuestionText::parse(self.text.as_deref().unwrap_or_default(), limits.question_chars)?;
        let room = rooms.resolve(self.room.as_deref())?.name().clone();
        let nickname = Nickname::parse_optional(self.nickname.as_deref(), limits.nickname_chars).map_err(|e| {
            IntakeError::NicknameTooLong {
                max: e.max,
                actual: e.actual,
            }
        })?;
        let id = match self.submission_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => QuestionId::new_random(),
            Some(raw) => QuestionId::parse(raw).ok_or(IntakeError::InvalidSubmissionId)?,
        };
        Ok(Question {
            id,
            room,
            text,
            nickname,
            submitted_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, content_type.parse().expect("header value"));
        h
    }

    #[test]
    fn content_types_are_matched_on_their_essence() {
        for (ct, expected) in [
            ("application/json", Encoding::Json),
            ("Application/JSON; charset=utf-8", Encoding::Json),
            ("application/x-www-form-urlencoded;charset=UTF-8", Encoding::Form),
        ] {
            let (_, encoding) = decode(&headers(ct), b"text=x")
                .or_else(|_| decode(&headers(ct), br#"{"text":"x"}"#))
                .expect(ct);
            assert_eq!(encoding, expected, "{ct}");
        }
        for ct in ["text/plain", "multipart/form-data; boundary=x", "application/jsonx"] {
            assert!(
                matches!(decode(&headers(ct), b"{}"), Err(IntakeError::UnsupportedMediaType)),
                "{ct}"
            );
        }
        assert!(
            matches!(decode(&HeaderMap::new(), b"{}"), Err(IntakeError::UnsupportedMediaType)),
            "no content type"
        );
    }

    #[test]
    fn form_encoded_japanese_is_decoded() {
        let body = "text=%E8%B3%AA%E5%95%8F&room=rust-101&nickname=";
        let (form, _) = decode(&headers("application/x-www-form-urlencoded"), body.as_bytes()).expect("decodes");
        assert_eq!(form.text.as_deref(), Some("質問"));
        assert_eq!(form.room.as_deref(), Some("rust-101"));
    }

    #[test]
    fn a_body_over_16_kib_is_too_large() {
        let body = vec![b'a'; MAX_BODY_BYTES + 1];
        assert!(matches!(
            decode(&headers("application/json"), &body),
            Err(IntakeError::PayloadTooLarge)
        ));
    }

    #[test]
    fn json_of_the_wrong_shape_is_malformed() {
        for body in [&b"[1,2]"[..], b"{\"text\": 5}", b"{", b"\xff\xfe", b""] {
            let result = decode(&headers("application/json"), body);
            assert!(
                matches!(result, Err(IntakeError::MalformedBody(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
