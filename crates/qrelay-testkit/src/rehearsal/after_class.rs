//! After class and the escalation in a deployed stack, when its parameters create them: the digest function's
//! real binary reads the archive the journey's consumer wrote, asks the chat for reactions, and mails the day's
//! questions through SES from the identity the stack created (verified here, as the instructor would by clicking
//! SES's link); the escalation function's binary takes a chat-down alarm and a tick, keeping its incident in the
//! table (no call: the alarm is minutes old).

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::json;

use super::Context;
use super::recorder::Call;
use super::report::Report;
use super::stack::Stack;

/// Runs what the stack has of the two; returns the AWS calls of the processes it started, by binary.
pub(crate) async fn check(
    context: &Context<'_>,
    stack: &Stack,
    environments: &BTreeMap<String, BTreeMap<String, String>>,
    report: &mut Report,
) -> anyhow::Result<Vec<(String, Vec<Call>)>> {
    let mut calls = Vec::new();
    if let Some(environment) = environments.get("digest") {
        let to = environment
            .get("DIGEST_EMAIL")
            .context("the digest has no DIGEST_EMAIL")?;
        let before = ses_sent(&stack.endpoint).await?;
        let mut digest = super::start_function(context, stack, context.spec("digest")?, environment).await?;
        let answer = digest.invoke(json!({})).await?;
        let questions = answer.body["questions"].as_u64().unwrap_or_default();
        report.check(
            answer.ok && questions >= 1 && answer.body["mailed"] == true,
            format!(
                "the digest function, invoked as its schedule does ({{}}), mails the day's {questions} question(s) \
                 to {to}: {}",
                answer.body
            ),
        );
        let sent = ses_sent(&stack.endpoint).await? - before;
        report.check(sent == 1.0, format!("SES sent {sent} mail(s) from {to}"));
        calls.push(("digest".to_owned(), digest.calls()));
    }
    if let Some(environment) = environments.get("escalation") {
        let alarm = environment
            .get("ESCALATION_ALARMS")
            .and_then(|a| a.split(',').next())
            .context("the escalation has no ESCALATION_ALARMS")?
            .to_owned();
        let mut escalation = super::start_function(context, stack, context.spec("escalation")?, environment).await?;
        let mut event: serde_json::Value = serde_json::from_str(&crate::samples::event("escalation-alarm.json"))?;
        let message = json!({ "AlarmName": alarm, "NewStateValue": "ALARM", "OldStateValue": "OK" });
        event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
        let heard = escalation.invoke(event).await?;
        report.check(
            heard.ok && heard.body["alarms"] == 1,
            format!(
                "the escalation function takes the alarm topic's notification of {alarm}: {}",
                heard.body
            ),
        );
        let tick = escalation.invoke(json!({ "tick": true })).await?;
        report.check(
            tick.ok && tick.body["called"].is_null(),
            format!(
                "a tick right after the alarm calls nobody (ESCALATE_AFTER_MINUTES has not passed): {}",
                tick.body
            ),
        );
        calls.push(("escalation".to_owned(), escalation.calls()));
    }
    Ok(calls)
}

/// How many mails moto's SES has sent (`GetSendQuota`'s `SentLast24Hours`, SES's query API, routed by moto on the
/// credential scope).
async fn ses_sent(endpoint: &str) -> anyhow::Result<f64> {
    let response = qrelay::chat::http_client(std::time::Duration::from_secs(10))?
        .post(format!("{endpoint}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20261205/{}/ses/aws4_request, SignedHeaders=host, Signature=0",
                super::template::REGION
            ),
        )
        .body("Action=GetSendQuota&Version=2010-12-01")
        .send()
        .await?;
    let xml = response.text().await?;
    let value = xml
        .split("<SentLast24Hours>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .with_context(|| format!("no SentLast24Hours in {xml}"))?;
    Ok(value.parse()?)
}
