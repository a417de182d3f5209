//! A timing proxy in front of moto and the Rocket.Chat fake. The functions under measurement talk to them through
//! it, and it adds up how long each call spent upstream, so a cold start or an invocation splits into the time
//! spent waiting on SNS, SQS, Secrets Manager or the chat, and the function's own time (the rest).
//!
//! The proxy's own forwarding (a loopback hop, well under a millisecond) counts as the function's own time, so
//! the split never flatters the function. Calls are added up, not overlapped: the measured invocations make
//! their calls one after another.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use qrelay_testkit::proxy::{Observer, Proxy};

/// Time spent upstream since the last [`Waited::take`], over every proxy that shares it.
#[derive(Debug, Default)]
pub struct Waited {
    nanos: AtomicU64,
    calls: AtomicU64,
}

impl Waited {
    /// The time waited and the number of calls since the last take, and starts counting again.
    pub fn take(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.nanos.swap(0, Ordering::SeqCst)),
            self.calls.swap(0, Ordering::SeqCst),
        )
    }

    fn add(&self, waited: Duration) {
        self.nanos
            .fetch_add(u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Observer for Waited {
    fn answered(&self, waited: Duration) {
        self.add(waited);
    }
}

/// A timing proxy to one upstream: the test kit's [`Proxy`] adding up into a [`Waited`].
pub type Downstream = Proxy;

/// Starts a timing proxy on loopback to `upstream` (`http://host:port`, no path).
pub async fn start(upstream: &str, waited: Arc<Waited>) -> anyhow::Result<Downstream> {
    Proxy::start(upstream, waited).await
}
