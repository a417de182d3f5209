//! Configuration read once at cold start from environment variables, with the variable's name in every error so
//! that a misconfigured deployment fails its first start with a message that says what to fix.

use std::str::FromStr;

use crate::domain::{Nickname, QuestionText, Rooms};

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where configuration values come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }
}

/// Reads a required variable.
pub fn required(src: &dyn Source, name: &'static str) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing(name))
}

/// Reads and parses an optional variable, falling back to `default`.
pub fn parsed_or<T: FromStr>(src: &dyn Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
    }
}

/// Reads a whole number within `1..=max`.
fn bounded(src: &dyn Source, name: &'static str, default: usize, max: usize) -> Result<usize, ConfigError> {
    let value = parsed_or(src, name, default)?;
    if value == 0 || value > max {
        return Err(ConfigError::Invalid { name, reason: format!("{value} is not between 1 and {max}") });
    }
    Ok(value)
}

/// The configured rooms (`ROOMS`), shared by intake and consumer.
pub fn rooms(src: &dyn Source) -> Result<Rooms, ConfigError> {
    Rooms::parse(&required(src, "ROOMS")?).map_err(|e| ConfigError::Invalid { name: "ROOMS", reason: e.to_string() })
}

/// Limits on what a student may type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MAX_QUESTION_CHARS`, default 1000, at most 2000.
    pub question_chars: usize,
    /// `MAX_NICKNAME_CHARS`, default 40, at most 100.
    pub nickname_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { question_chars: QuestionText::DEFAULT_MAX_CHARS, nickname_chars: Nickname::DEFAULT_MAX_CHARS }
    }
}

impl Limits {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            question_chars: bounded(src, "MAX_QUESTION_CHARS", QuestionText::DEFAULT_MAX_CHARS, QuestionText::MAX_CHARS_LIMIT)?,
            nickname_chars: bounded(src, "MAX_NICKNAME_CHARS", Nickname::DEFAULT_MAX_CHARS, Nickname::MAX_CHARS_LIMIT)?,
        })
    }
}

/// The intake function's configuration.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `TOPIC_ARN`: the SNS topic questions are published to.
    pub topic_arn: String,
    /// `ROOMS`: see [`Rooms::parse`].
    pub rooms: Rooms,
    pub limits: Limits,
}

impl IntakeConfig {
    /// The variables without which the intake function can't start. The template test checks that the SAM
    /// template sets each of them.
    pub const REQUIRED: &'static [&'static str] = &["TOPIC_ARN", "ROOMS"];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self { topic_arn: required(src, "TOPIC_ARN")?, rooms: rooms(src)?, limits: Limits::from_source(src)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let err = IntakeConfig::from_source(&[("ROOMS", "general")]).expect_err("TOPIC_ARN is missing");
        assert_eq!(err.to_string(), "environment variable TOPIC_ARN is required but not set");
        let err = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t")]).expect_err("ROOMS is missing");
        assert!(err.to_string().contains("ROOMS"), "{err}");
    }

    #[test]
    fn limits_default_and_are_bounded() {
        let config = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t"), ("ROOMS", "a")]).expect("valid");
        assert_eq!(config.limits, Limits::default());
        for bad in ["0", "2001", "many", "-1"] {
            let err = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t"), ("ROOMS", "a"), ("MAX_QUESTION_CHARS", bad)])
                .expect_err("out of range");
            assert!(err.to_string().contains("MAX_QUESTION_CHARS"), "{bad}: {err}");
        }
    }
}
