//! Amazon SES (the v2 API's `SendEmail`) as the digest's [`Mailer`], from the verified identity `DIGEST_FROM`.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{DigestError, Mailer};

/// Sends through SES from one verified identity.
#[derive(Debug)]
pub struct SesMailer {
    client: tokio::sync::OnceCell<aws_sdk_sesv2::Client>,
    from: String,
}

impl SesMailer {
    /// A mailer that builds its client on first use: the console's cold start does not pay for it.
    pub fn lazy(from: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new(),
            from: from.into(),
        }
    }

    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new_with(Some(client)),
            from: from.into(),
        }
    }
}

fn content(data: &str) -> Result<Content, DigestError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| DigestError::Mail(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), DigestError> {
        let client = self
            .client
            .get_or_init(|| async { aws_sdk_sesv2::Client::new(crate::aws::shared().await) })
            .await;
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(text)?).html(content(html)?).build())
            .build();
        client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                DigestError::Mail(format!(
                    "SES SendEmail: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ))
            })?;
        tracing::info!("digest mailed");
        Ok(())
    }
}
