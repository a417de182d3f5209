//! Everything that can go wrong while taking a question, split into the student's fault (4xx, with a message
//! that helps) and ours (503, opaque, with `Retry-After`), and the one place that maps it to a status.

use http::StatusCode;

use crate::domain::{InvalidText, TooLong, UnknownRoom};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
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
    /// Our fault: the question could not be published. Never acknowledged as queued.
    #[error("the question could not be queued right now; please try again")]
    Unavailable(#[source] anyhow::Error),
}

impl IntakeError {
    /// Seconds a client should wait before retrying after [`IntakeError::Unavailable`].
    pub const RETRY_AFTER_SECS: u32 = 5;

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
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
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code; the form translates it for the student.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyText => "empty_text",
            Self::TextTooLong { .. } => "text_too_long",
            Self::NicknameTooLong { .. } => "nickname_too_long",
            Self::UnknownRoom(_) => "unknown_room",
            Self::InvalidSubmissionId => "invalid_submission_id",
            Self::MalformedBody(_) => "malformed_body",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::NotFound => "not_found",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } })
    }
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
