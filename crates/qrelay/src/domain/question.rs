//! A question as qrelay knows it once it has been accepted, and the versioned JSON document that carries it
//! from the intake function, through SNS and SQS, to the consumer.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{InvalidRoomName, InvalidText, Nickname, QuestionText, RoomName, TooLong};

/// A question's identity: a random UUID v4, chosen once when the student submits and kept through every retry,
/// so that every later step can recognise a question it has already handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuestionId(Uuid);

impl QuestionId {
    /// A new random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// An id made from a v4-shaped UUID built elsewhere in qrelay (a flood notice's, derived from its room and
    /// minute so every consumer picks the same one).
    pub(crate) fn from_uuid(uuid: Uuid) -> Self {
        debug_assert_eq!(uuid.get_version_num(), 4);
        Self(uuid)
    }

    /// Parses an id chosen earlier (by the form, so that a student's retry keeps the question's identity).
    /// Only UUID v4 is accepted: anything else was not made by qrelay.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw.trim())
            .ok()
            .filter(|u| u.get_version_num() == 4)
            .map(Self)
    }
}

impl std::fmt::Display for QuestionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An accepted question. Every field is already valid; nothing here identifies the student.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: QuestionId,
    pub room: RoomName,
    pub text: QuestionText,
    pub nickname: Option<Nickname>,
    pub submitted_at: Timestamp,
}

/// The document published to SNS and read back by the consumer: `{"v":1,"id":...,"room":...,"text":...,
/// "nickname":...,"submitted_at":...}`. The one serde type both sides use, so they can't drift apart.
///
/// Written strictly, read tolerantly: this code writes exactly these fields, and reads any document of its
/// version, ignoring fields it does not know. During a deploy an old consumer runs next to a new intake, so a new
/// optional field must not dead-letter its questions; a changed meaning needs a new `v` (see ARCHITECTURE.md,
/// "Changing the question document").
///
/// **Invariant:** it holds only what the student typed, the room, the id and the time: never an address, a user
/// agent, a cookie or any other request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionMessage {
    /// Schema version; always [`QuestionMessage::VERSION`] for documents this code writes.
    pub(crate) v: u32,
    pub id: QuestionId,
    pub room: String,
    pub text: String,
    pub nickname: Option<String>,
    /// RFC 3339 in UTC, e.g. `2026-11-22T09:30:00Z`.
    pub(crate) submitted_at: Timestamp,
}

/// Why a published document can't be turned back into a question.
#[derive(Debug, thiserror::Error)]
pub enum InvalidMessage {
    #[error("not a qrelay question document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported schema version {0} (this build reads version {v})", v = QuestionMessage::VERSION)]
    Version(u32),
    #[error(transparent)]
    Room(#[from] InvalidRoomName),
    #[error("question text: {0}")]
    Text(InvalidText),
    #[error("nickname: {0}")]
    Nickname(TooLong),
}

impl QuestionMessage {
    /// The schema version this build writes and reads.
    pub(crate) const VERSION: u32 = 1;

    /// Parses a document from its JSON text.
    pub fn from_json(json: &str) -> Result<Self, InvalidMessage> {
        let message: Self = serde_json::from_str(json)?;
        if message.v != Self::VERSION {
            return Err(InvalidMessage::Version(message.v));
        }
        Ok(message)
    }

    /// Reads the question document from an SQS message body: the standard SNS envelope around it, or the document
    /// itself (raw message delivery, or a message sent to the queue directly).
    pub(crate) fn from_queue_body(body: &str) -> Result<Self, InvalidMessage> {
        match serde_json::from_str::<SnsEnvelope>(body) {
            Ok(envelope) if envelope.kind == "Notification" => Self::from_json(&envelope.message),
            _ => Self::from_json(body),
        }
    }

    /// The document as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, a UUID and a timestamp into a String cannot fail.
        serde_json::to_string(self).expect("a QuestionMessage always serialises")
    }
}

/// The standard SNS envelope around a message delivered to SQS without raw message delivery.
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

impl Question {
    /// The question in an SQS message body (see [`QuestionMessage::from_queue_body`]), parsed again.
    pub(crate) fn from_queue_body(body: &str) -> Result<Self, InvalidMessage> {
        Self::try_from(QuestionMessage::from_queue_body(body)?)
    }
}

impl From<&Question> for QuestionMessage {
    fn from(q: &Question) -> Self {
        Self {
            v: Self::VERSION,
            id: q.id,
            room: q.room.to_string(),
            text: q.text.to_string(),
            nickname: q.nickname.as_ref().map(ToString::to_string),
            submitted_at: q.submitted_at,
        }
    }
}

impl TryFrom<QuestionMessage> for Question {
    type Error = InvalidMessage;

    /// Re-parses what arrives from the queue instead of trusting it: the queue is only as trustworthy as every
    /// publisher to the topic. The limits are the largest any deployment may configure.
    fn try_from(m: QuestionMessage) -> Result<Self, Self::Error> {
        if m.v != QuestionMessage::VERSION {
            return Err(InvalidMessage::Version(m.v));
        }
        Ok(Self {
            id: m.id,
            room: RoomName::parse(&m.room)?,
            text: QuestionText::parse(&m.text, QuestionText::READ_LIMIT).map_err(InvalidMessage::Text)?,
            nickname: Nickname::parse_optional(m.nickname.as_deref(), Nickname::MAX_CHARS_LIMIT)
                .map_err(InvalidMessage::Nickname)?,
            submitted_at: m.submitted_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Question {
        Question {
            id: QuestionId::parse("6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f").expect("v4 uuid"),
            room: RoomName::parse("rust-101").expect("room"),
            text: QuestionText::parse("所有権とは？\nWhat is ownership?", 1000).expect("text"),
            nickname: None,
            submitted_at: "2026-11-22T09:30:00Z".parse().expect("timestamp"),
        }
    }

    #[test]
    fn the_published_document_has_the_documented_shape() {
        let json = QuestionMessage::from(&sample()).to_json();
        assert_eq!(
            json,
            r#"{"v":1,"id":"6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f","room":"rust-101","text":"所有権とは？\nWhat is ownership?","nickname":null,"submitted_at":"2026-11-22T09:30:00Z"}"#
        );
    }

    #[test]
    fn a_document_round_trips_to_the_same_question() {
        let question = sample();
        let parsed = QuestionMessage::from_json(&QuestionMessage::from(&question).to_json()).expect("parses");
        assert_eq!(Question::try_from(parsed).expect("valid"), question);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let v2 = r#"{"v":2,"id":"6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f","room":"a","text":"t","nickname":null,"submitted_at":"2026-11-22T09:30:00Z"}"#;
        assert!(matches!(
            QuestionMessage::from_json(v2),
            Err(InvalidMessage::Version(2))
        ));
        let v2_with_new_field = r#"{"v":2,"id":"6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f","room":"a","text":"t","nickname":null,"submitted_at":"2026-11-22T09:30:00Z","lang":"ja"}"#;
        assert!(matches!(
            QuestionMessage::from_json(v2_with_new_field),
            Err(InvalidMessage::Version(2))
        ));
    }

    #[test]
    fn a_version_1_document_with_a_field_this_build_does_not_know_is_read() {
        // What a newer intake may publish to an older consumer during a deploy.
        let newer = r#"{"v":1,"id":"6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f","room":"rust-101","text":"所有権とは？\nWhat is ownership?","nickname":null,"submitted_at":"2026-11-22T09:30:00Z","priority":"high"}"#;
        let question = Question::try_from(QuestionMessage::from_json(newer).expect("tolerant reader")).expect("valid");
        assert_eq!(question, sample());
        assert!(
            !QuestionMessage::from(&question).to_json().contains("priority"),
            "the writer writes only what the schema defines"
        );
    }

    #[test]
    fn a_queue_body_is_an_sns_envelope_or_the_document_itself() {
        let document = QuestionMessage::from(&sample()).to_json();
        let envelope = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": document}).to_string();
        for body in [&document, &envelope] {
            assert_eq!(Question::from_queue_body(body).expect("a question"), sample(), "{body}");
        }
        assert!(matches!(
            Question::from_queue_body("{\"Type\":\"Notification\"}"),
            Err(InvalidMessage::Json(_))
        ));
    }

    #[test]
    fn a_document_with_empty_text_is_not_a_question() {
        let mut message = QuestionMessage::from(&sample());
        message.text = " ".into();
        assert!(matches!(
            Question::try_from(message),
            Err(InvalidMessage::Text(InvalidText::Empty))
        ));
    }

    #[test]
    fn only_version_4_uuids_are_question_ids() {
        assert!(QuestionId::parse("6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f").is_some());
        assert!(
            QuestionId::parse("6f1f3c1e-8a4b-1c2d-9e7f-0a1b2c3d4e5f").is_none(),
            "v1"
        );
        assert!(QuestionId::parse("not-a-uuid").is_none());
    }
}
