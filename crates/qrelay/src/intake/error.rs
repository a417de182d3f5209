//! Everything that can go wrong while taking a question, split into the student's fault (4xx, with a message
//! that helps) and ours (503, opaque, with `Retry-After`), the one place that maps it to a status, and the closed
//! set of codes the JSON API and the form's translations share.

use http::StatusCode;

use crate::domain::{InvalidText, TooLong, UnknownRoom};

/// Largest request body accepted, in bytes.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IntakeError {
    #[error("the question text is empty")]
    EmptyText,
    #[error("the question is too long: {actual} characters, at most {max} allowed")]
    TextTooLong { max: usize, actual: usize },
    #[error("the nickname is too long: {actual} characters, at most {max} allowed")]
    NicknameTooLong { max: usize, actual: usize },
    #[error("unknown room {0:?}")]
    UnknownRoom(String),
    #[error("submission_id must be a UUID v4")]
    InvalidSubmissionId,
    #[error("the request body could not be read: {0}")]
    MalformedBody(String),
    #[error("the request body is larger than {} bytes", MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("send the question as application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("this path does not accept that method")]
    MethodNotAllowed { allow: &'static str },
    #[error("no such page")]
    NotFound,
    /// The instructor paused the room: nothing is published until they open it again.
    #[error("questions to this room are paused by the instructor; keep your text and send it again later")]
    RoomPaused,
    /// Our fault: the question could not be published. Never acknowledged as queued.
    #[error("the question could not be queued right now; please try again")]
    Unavailable(#[source] anyhow::Error),
}

impl IntakeError {
    /// Seconds a client should wait before retrying after [`IntakeError::Unavailable`].
    pub(crate) const RETRY_AFTER_SECS: u32 = 5;

    /// The HTTP status for this error.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::EmptyText
            | Self::TextTooLong { .. }
            | Self::NicknameTooLong { .. }
            | Self::UnknownRoom(_)
            | Self::InvalidSubmissionId
            | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RoomPaused => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code; the form translates it for the student.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::EmptyText => ErrorCode::EmptyText,
            Self::TextTooLong { .. } => ErrorCode::TextTooLong,
            Self::NicknameTooLong { .. } => ErrorCode::NicknameTooLong,
            Self::UnknownRoom(_) => ErrorCode::UnknownRoom,
            Self::InvalidSubmissionId => ErrorCode::InvalidSubmissionId,
            Self::MalformedBody(_) => ErrorCode::MalformedBody,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::NotFound => ErrorCode::NotFound,
            Self::RoomPaused => ErrorCode::RoomPaused,
            Self::Unavailable(_) => ErrorCode::Unavailable,
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code().as_str(), "message": self.to_string() } })
    }
}

/// Declares [`ErrorCode`] from a single list, so that [`ErrorCode::ALL`] can't miss a code.
macro_rules! error_codes {
    ($($variant:ident = $code:literal,)+) => {
        /// The codes an error body carries, a closed set: the README documents them, clients and the form's script
        /// branch on them, and `strings.rs` has a message for each in every language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order declared.
            pub(crate) const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// What the JSON body's `code` carries.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    EmptyText = "empty_text",
    TextTooLong = "text_too_long",
    NicknameTooLong = "nickname_too_long",
    UnknownRoom = "unknown_room",
    InvalidSubmissionId = "invalid_submission_id",
    MalformedBody = "malformed_body",
    PayloadTooLarge = "payload_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    MethodNotAllowed = "method_not_allowed",
    NotFound = "not_found",
    RoomPaused = "room_paused",
    Unavailable = "unavailable",
}

impl From<InvalidText> for IntakeError {
    fn from(e: InvalidText) -> Self {
        match e {
            InvalidText::Empty => Self::EmptyText,
            InvalidText::TooLong(TooLong { max, actual }) => Self::TextTooLong { max, actual },
        }
    }
}

impl From<UnknownRoom> for IntakeError {
    fn from(e: UnknownRoom) -> Self {
        Self::UnknownRoom(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_snake_case_words() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let s = code.as_str();
            assert!(
                !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code:?} is {s:?}"
            );
            assert!(
                ErrorCode::ALL[..i].iter().all(|other| other.as_str() != s),
                "{s:?} is used twice"
            );
        }
    }

    #[test]
    fn error_bodies_carry_the_documented_code_and_message() {
        let cases = [
            (
                IntakeError::EmptyText,
                r#"{"error":{"code":"empty_text","message":"the question text is empty"}}"#,
            ),
            (
                IntakeError::TextTooLong {
                    max: 1000,
                    actual: 1001,
                },
                r#"{"error":{"code":"text_too_long","message":"the question is too long: 1001 characters, at most 1000 allowed"}}"#,
            ),
            (
                IntakeError::NicknameTooLong { max: 40, actual: 41 },
                r#"{"error":{"code":"nickname_too_long","message":"the nickname is too long: 41 characters, at most 40 allowed"}}"#,
            ),
            (
                IntakeError::UnknownRoom("python".into()),
                r#"{"error":{"code":"unknown_room","message":"unknown room \"python\""}}"#,
            ),
            (
                IntakeError::InvalidSubmissionId,
                r#"{"error":{"code":"invalid_submission_id","message":"submission_id must be a UUID v4"}}"#,
            ),
            (
                IntakeError::MalformedBody("EOF".into()),
                r#"{"error":{"code":"malformed_body","message":"the request body could not be read: EOF"}}"#,
            ),
            (
                IntakeError::PayloadTooLarge,
                r#"{"error":{"code":"payload_too_large","message":"the request body is larger than 16384 bytes"}}"#,
            ),
            (
                IntakeError::UnsupportedMediaType,
                r#"{"error":{"code":"unsupported_media_type","message":"send the question as application/json or application/x-www-form-urlencoded"}}"#,
            ),
            (
                IntakeError::MethodNotAllowed { allow: "POST" },
                r#"{"error":{"code":"method_not_allowed","message":"this path does not accept that method"}}"#,
            ),
            (
                IntakeError::NotFound,
                r#"{"error":{"code":"not_found","message":"no such page"}}"#,
            ),
            (
                IntakeError::RoomPaused,
                r#"{"error":{"code":"room_paused","message":"questions to this room are paused by the instructor; keep your text and send it again later"}}"#,
            ),
            (
                IntakeError::Unavailable(anyhow::anyhow!("SNS is down")),
                r#"{"error":{"code":"unavailable","message":"the question could not be queued right now; please try again"}}"#,
            ),
        ];
        assert_eq!(cases.len(), ErrorCode::ALL.len(), "one case per code");
        for (e, expected) in cases {
            assert_eq!(e.to_json().to_string(), expected, "{e:?}");
        }
    }
}
