//! A recording proxy (the test kit's [`Proxy`] with an observer) in front of moto, one per function process: it forwards every AWS call unchanged and notes
//! which action the function called on which resource. moto enforces no IAM, so the rehearsal replays these
//! calls against the role the stack gave the function (see `iam`): a call the role would not allow fails the
//! rehearsal, as it would fail in AWS.

use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, header};

use crate::proxy::{Observer, Proxy};

/// One AWS call a function made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `sqs:SendMessage`, as IAM names it.
    pub action: String,
    /// What the call named: a queue URL, a topic ARN or a secret id; empty when it named none.
    pub target: String,
}

/// The calls seen so far.
#[derive(Debug, Default)]
struct Calls(Mutex<Vec<Call>>);

impl Observer for Calls {
    fn request(&self, headers: &HeaderMap, body: &[u8]) {
        if let Some(call) = call_of(headers, body) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(call);
        }
    }
}

/// A running recorder, stopped when dropped.
#[derive(Debug)]
pub struct Recorder {
    pub url: String,
    calls: Arc<Calls>,
    _proxy: Proxy,
}

impl Recorder {
    /// Starts a recorder on loopback forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let calls = Arc::new(Calls::default());
        let proxy = Proxy::start(upstream, calls.clone()).await?;
        Ok(Self {
            url: proxy.url.clone(),
            calls,
            _proxy: proxy,
        })
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The IAM action and target of one signed AWS request: the service from the signature's credential scope, the
/// operation from `X-Amz-Target` (JSON protocols: SQS, Secrets Manager) or the form's `Action` (query protocol:
/// SNS), the target from the body.
fn call_of(headers: &HeaderMap, body: &[u8]) -> Option<Call> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scope = authorization.split("Credential=").nth(1)?;
    let service = scope.split('/').nth(3)?;
    const TARGETS: [&str; 5] = ["QueueUrl", "TopicArn", "SecretId", "TargetArn", "TableName"];
    let (operation, target) = match headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        Some(target_header) => {
            let operation = target_header.rsplit('.').next()?.to_owned();
            let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let target = TARGETS.iter().find_map(|k| json[*k].as_str()).unwrap_or_default();
            // DynamoDB names a table by its name; IAM by its ARN.
            let target = match json["TableName"].as_str() {
                Some(table) if service == "dynamodb" => format!(
                    "arn:aws:dynamodb:{}:{}:table/{table}",
                    super::template::REGION,
                    super::template::ACCOUNT_ID
                ),
                _ => target.to_owned(),
            };
            (operation, target)
        }
        // SES's v2 API is REST (no target header, no Action): SendEmail is the one call with a sender, and IAM
        // evaluates it on the sender's identity.
        None if service == "ses" => {
            let json: serde_json::Value = serde_json::from_slice(body).ok()?;
            let from = json["FromEmailAddress"].as_str()?;
            let identity = format!(
                "arn:aws:ses:{}:{}:identity/{from}",
                super::template::REGION,
                super::template::ACCOUNT_ID
            );
            ("SendEmail".to_owned(), identity)
        }
        None => {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
            let value = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let operation = value("Action")?;
            let target = TARGETS.iter().find_map(|k| value(k)).unwrap_or_default();
            (operation, target)
        }
    };
    Some(Call {
        action: iam_action(service, &operation),
        target,
    })
}

/// The IAM action an API operation needs: the batch operations of SQS and SNS need their single-message
/// action, not one of their own.
fn iam_action(service: &str, operation: &str) -> String {
    let action = match (service, operation) {
        ("sqs", "SendMessageBatch") => "SendMessage",
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        ("sns", "PublishBatch") => "Publish",
        (_, operation) => operation,
    };
    format!("{service}:{action}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261123/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&authorization).expect("header"),
        );
        headers
    }

    #[test]
    fn json_and_query_protocol_calls_are_named_as_iam_names_them() {
        let mut headers = signed("sqs");
        headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.SendMessage"));
        let call = call_of(&headers, br#"{"QueueUrl":"https://q/1/x","MessageBody":"b"}"#).expect("a call");
        assert_eq!(call.action, "sqs:SendMessage");
        assert_eq!(call.target, "https://q/1/x");

        let call = call_of(&signed("sns"), b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Ax&Message=m").expect("a call");
        assert_eq!(call.action, "sns:Publish");
        assert_eq!(call.target, "arn:aws:sns:x");
    }

    #[test]
    fn a_batch_operation_needs_its_single_message_action() {
        let mut headers = signed("sqs");
        headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.DeleteMessageBatch"));
        let call = call_of(&headers, br#"{"QueueUrl":"https://q/1/x"}"#).expect("a call");
        assert_eq!(call.action, "sqs:DeleteMessage", "IAM has no sqs:DeleteMessageBatch");
    }

    #[test]
    fn an_ses_mail_is_a_send_email_on_its_senders_identity() {
        let call = call_of(
            &signed("ses"),
            br#"{"FromEmailAddress":"sensei@example.com","Destination":{}}"#,
        )
        .expect("a call");
        assert_eq!(call.action, "ses:SendEmail");
        assert_eq!(
            call.target,
            "arn:aws:ses:us-east-1:123456789012:identity/sensei@example.com"
        );
    }

    #[test]
    fn an_unsigned_request_is_not_a_call() {
        assert_eq!(call_of(&HeaderMap::new(), b"Action=Publish"), None);
    }
}
