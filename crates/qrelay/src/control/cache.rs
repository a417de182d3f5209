//! Room states cached for a few seconds in each function, so a busy form does not read the table per request and
//! an instructor's switch still takes effect within [`CachedRooms::DEFAULT_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ControlStore, RoomStatus, StoreError};
use crate::domain::RoomName;

/// A store's room states, each kept for at most a TTL.
pub struct CachedRooms {
    store: Arc<dyn ControlStore>,
    ttl: Duration,
    entries: Mutex<HashMap<RoomName, (Instant, RoomStatus)>>,
}

impl std::fmt::Debug for CachedRooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRooms")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedRooms {
    /// How long a room state read is trusted: the "a change takes effect within 10 seconds".
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

    pub fn new(store: Arc<dyn ControlStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The store behind the cache.
    pub fn store(&self) -> &Arc<dyn ControlStore> {
        &self.store
    }

    /// The room's status, from the cache when read less than the TTL ago.
    pub async fn status(&self, room: &RoomName) -> Result<RoomStatus, StoreError> {
        let cached = self
            .lock()
            .get(room)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, status)| status.clone());
        if let Some(status) = cached {
            return Ok(status);
        }
        let status = self.store.room_status(room).await?;
        self.remember(room, status.clone());
        Ok(status)
    }

    /// Replaces the cached status after this function changed it itself.
    pub fn remember(&self, room: &RoomName, status: RoomStatus) {
        self.lock().insert(room.clone(), (Instant::now(), status));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, (Instant, RoomStatus)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
