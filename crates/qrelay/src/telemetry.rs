//! The one logging set-up of the Lambda binaries: Lambda's logging controls (`AWS_LAMBDA_LOG_LEVEL`, or
//! `RUST_LOG`, and `AWS_LAMBDA_LOG_FORMAT`), as `lambda_runtime`'s default subscriber reads them, with the
//! third-party crates that see raw requests and answers capped below TRACE whatever the level.
//!
//! At TRACE, `lambda_runtime` logs every raw event (an API Gateway event carries the student's address, user
//! agent and cookies) and the HTTP and SDK crates log what they send and receive (the Secrets Manager answer
//! holds the chat token). qrelay's own TRACE stays available; theirs never is.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::EnvFilter;
use lambda_runtime::tracing::subscriber::filter::{Directive, LevelFilter};

/// The crates whose TRACE output may hold a raw request, event or answer.
const CAPPED: [&str; 11] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_types",
    "aws_sdk_secretsmanager",
    // The digest's mail (the day's questions) is an SES request body; the SDK crate logs none of it today (the logs
    // test passes without this line), this keeps it so.
    "aws_sdk_sesv2",
    "hyper",
    "reqwest",
];

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| LevelFilter::from_str(&l).ok())
        .unwrap_or(LevelFilter::INFO);
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let collector = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level, EnvFilter::builder().with_default_directive(level.into())));
    if format.eq_ignore_ascii_case("json") {
        collector.json().init();
    } else {
        collector.with_ansi(false).init();
    }
}

/// `RUST_LOG`'s directives over `level`, then each capped crate at `level` but never more than DEBUG: added last,
/// so a `RUST_LOG` directive can't lift them either.
fn filter(level: LevelFilter, builder: lambda_runtime::tracing::subscriber::filter::Builder) -> EnvFilter {
    let cap = level.min(LevelFilter::DEBUG);
    CAPPED.iter().fold(builder.from_env_lossy(), |filter, target| {
        filter.add_directive(capped(target, cap))
    })
}

fn capped(target: &str, cap: LevelFilter) -> Directive {
    format!("{target}={cap}")
        .parse()
        .unwrap_or_else(|e| unreachable!("{target}={cap} is a valid directive: {e}"))
}

#[cfg(test)]
mod tests {
    use lambda_runtime::tracing::subscriber::filter::Builder;

    use super::*;

    #[test]
    fn third_party_crates_never_log_at_trace() {
        for level in [LevelFilter::TRACE, LevelFilter::DEBUG, LevelFilter::INFO] {
            let filter = filter(level, Builder::default().with_default_directive(level.into()));
            let shown = format!("{filter}");
            for target in CAPPED {
                assert!(!shown.contains(&format!("{target}=trace")), "{level}: {shown}");
                assert!(
                    shown.contains(&format!("{target}={}", level.min(LevelFilter::DEBUG))),
                    "{level}: {target} capped: {shown}"
                );
            }
            assert_eq!(
                filter.max_level_hint(),
                Some(level),
                "qrelay's own events keep the level asked for"
            );
        }
    }
}
