//! Counts per batch, printed as one CloudWatch embedded-metric-format line: CloudWatch turns it into metrics the
//! instructor can alarm on, at no API cost and with no latency added to the invocation.

use std::time::{Duration, SystemTime};

use serde_json::json;

/// What happened to one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BatchMetrics {
    pub(crate) posted: u32,
    pub(crate) already_posted: u32,
    pub(crate) retried: u32,
    pub(crate) dead_lettered: u32,
    /// Questions not posted because the same text was posted in the same room moments before.
    pub(crate) duplicates: u32,
    /// Questions held for the instructor's review instead of posted (room under review, or the flood breaker).
    pub(crate) held: u32,
    /// Held questions the instructor rejected, met again in the queue: dropped.
    pub(crate) rejected: u32,
    /// Latency of each chat call that got an answer, in milliseconds.
    chat_latency_ms: Vec<f64>,
}

/// The CloudWatch namespace qrelay's metrics live in.
const NAMESPACE: &str = "qrelay";

impl BatchMetrics {
    pub(crate) fn record_latency(&mut self, latency: Duration) {
        self.chat_latency_ms.push(latency.as_secs_f64() * 1000.0);
    }

    /// The embedded-metric-format document for this batch.
    fn to_emf(&self, now: SystemTime) -> serde_json::Value {
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let count = |name: &str| json!({ "Name": name, "Unit": "Count" });
        let mut metrics = vec![
            count("Posted"),
            count("AlreadyPosted"),
            count("Retried"),
            count("DeadLettered"),
            count("Duplicates"),
            count("Held"),
            count("Rejected"),
        ];
        let mut doc = json!({
            "Posted": self.posted,
            "AlreadyPosted": self.already_posted,
            "Retried": self.retried,
            "DeadLettered": self.dead_lettered,
            "Duplicates": self.duplicates,
            "Held": self.held,
            "Rejected": self.rejected,
        });
        if !self.chat_latency_ms.is_empty() {
            metrics.push(json!({ "Name": "ChatLatency", "Unit": "Milliseconds" }));
            doc["ChatLatency"] = json!(self.chat_latency_ms);
        }
        doc["_aws"] = json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": metrics }],
        });
        doc
    }

    /// Prints the EMF line on standard output, where Lambda's log capture picks it up.
    pub(crate) fn emit(&self) {
        println!("{}", self.to_emf(SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emf_document_declares_every_metric_it_carries() {
        let mut metrics = BatchMetrics {
            posted: 3,
            retried: 1,
            ..Default::default()
        };
        metrics.record_latency(Duration::from_millis(20));
        let doc = metrics.to_emf(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(doc["_aws"]["Timestamp"], 1000);
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["Name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            declared,
            [
                "Posted",
                "AlreadyPosted",
                "Retried",
                "DeadLettered",
                "Duplicates",
                "Held",
                "Rejected",
                "ChatLatency"
            ]
        );
        for name in declared {
            assert!(!doc[name].is_null(), "{name} has a value");
        }
        assert_eq!(doc["Posted"], 3);
        assert_eq!(doc["ChatLatency"][0], 20.0);
    }
}
