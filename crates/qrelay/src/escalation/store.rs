//! Where the incident is kept: one item of the instructor's table (`pk` `escalation`, `sk` `incident`), written
//! only if its version is still the one read.

use async_trait::async_trait;

use super::Incident;
use crate::control::StoreError;

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    /// 0 when never written.
    pub version: u64,
}

/// The incident's store.
#[async_trait]
pub trait EscalationStore: Send + Sync {
    /// The incident as stored (the default, version 0, when there never was one).
    async fn incident(&self) -> Result<Versioned<Incident>, StoreError>;

    /// Writes `incident` as version `read + 1` if the stored one is still `read`; false if someone else wrote
    /// first (then read again and decide again).
    async fn save_incident(&self, incident: &Incident, read: u64) -> Result<bool, StoreError>;
}
