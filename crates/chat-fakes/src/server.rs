//! What every fake shares: serving a router on a free loopback port for as long as the handle lives, and the
//! faults a test can switch on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::task::JoinHandle;

/// A fake serving on `127.0.0.1`; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    server: JoinHandle<()>,
}

impl Running {
    /// Serves `app` on a free loopback port, on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound: a test can't go on without its server.
    pub async fn serve(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a fake chat to a free port on 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, server }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Faults a test switches on, shared by a fake's handlers.
#[derive(Debug, Default)]
pub struct Faults {
    /// Lose the answer of every n-th post after storing it (0: never), by answering only after `lost_delay`, past
    /// the client's timeout.
    lose_every: AtomicUsize,
    posts: AtomicUsize,
    lost_delay: Mutex<Duration>,
    /// Answer every request with this status (5xx, 401, 403), storing nothing; `None` serves normally.
    failing: Mutex<Option<u16>>,
    /// Answer every request after this delay (it is processed first).
    slow: Mutex<Option<Duration>>,
}

impl Faults {
    /// Loses the answer to every `n`-th post after storing it: the answer leaves only after `delay`, which a test
    /// sets above its client's timeout. `n = 10` loses 10% of answers.
    pub fn lose_every(&self, n: usize, delay: Duration) {
        *lock(&self.lost_delay) = delay;
        self.lose_every.store(n, Ordering::SeqCst);
    }

    /// Whether the answer to the post just stored is to be lost, and for how long to hold it.
    pub fn lose_this_answer(&self) -> Option<Duration> {
        let n = self.lose_every.load(Ordering::SeqCst);
        let count = self.posts.fetch_add(1, Ordering::SeqCst) + 1;
        (n > 0 && count % n == 0).then(|| *lock(&self.lost_delay))
    }

    /// Answers every request with `status`, storing nothing; `None` to serve normally again.
    pub fn fail_with(&self, status: Option<u16>) {
        *lock(&self.failing) = status;
    }

    pub fn failing(&self) -> Option<u16> {
        *lock(&self.failing)
    }

    /// Holds every answer for `delay` after processing the request; `None` to answer at once.
    pub fn slow(&self, delay: Option<Duration>) {
        *lock(&self.slow) = delay;
    }

    pub fn slowness(&self) -> Option<Duration> {
        *lock(&self.slow)
    }
}

/// A poisoned lock only means a test thread panicked; the data is still what the fake needs.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
