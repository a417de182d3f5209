//! How long a question waits before its next delivery attempt while the chat is down.
//!
//! The queue's redrive policy gives each message 30 receives before it goes to the dead-letter queue. Retrying
//! at the queue's fixed visibility timeout would burn that budget in minutes; instead the consumer sets each
//! failed message's visibility to an exponential delay by its receive count, so the budget spans hours:
//!
//! | receive | 1  | 2  | 3  | 4   | 5   | 6   | 7   | 8..30 |
//! |---------|----|----|----|-----|-----|-----|-----|-------|
//! | delay   | 10s| 20s| 40s| 80s | 160s| 320s| 640s| 900s  |
//!
//! Before jitter that is 21 min for the first seven and 23 × 15 min after: about 6 h 6 min from the first
//! failure to the dead-letter queue. "Equal jitter" (half fixed, half random) keeps retries of a burst of
//! questions from arriving together when the chat recovers, and makes the total between about 3 h 3 min and
//! 6 h 6 min.

use std::time::Duration;

/// The backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed receive.
    pub base: Duration,
    /// Largest delay (SQS allows at most 12 hours of visibility timeout).
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(900),
        }
    }
}

/// SQS's largest visibility timeout.
const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

impl Backoff {
    /// The delay before the next attempt of a message received `receive_count` times (1 on its first receive),
    /// before jitter.
    pub(crate) fn delay(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(31);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.cap)
            .min(SQS_MAX_VISIBILITY)
    }

    /// [`Backoff::delay`] with equal jitter: uniformly between half of it and all of it. `unit` is a random number
    /// in `[0, 1)`.
    pub(crate) fn jittered(&self, receive_count: u32, unit: f64) -> Duration {
        let delay = self.delay(receive_count);
        delay / 2 + (delay / 2).mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The total time, before jitter, that a message spends waiting across `receives` failed receives.
    fn total(backoff: &Backoff, receives: u32) -> Duration {
        (1..=receives).map(|n| backoff.delay(n)).sum()
    }

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (1..=9).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(
            backoff.delay(0),
            Duration::from_secs(10),
            "a missing receive count is treated as the first"
        );
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(900), "no overflow");
    }

    #[test]
    fn thirty_receives_span_about_six_hours() {
        let total = total(&Backoff::default(), 30);
        assert_eq!(total, Duration::from_secs(1270 + 23 * 900), "the documented schedule");
        assert_eq!(total.as_secs() / 60, 366, "6 h 6 min, as the module documentation says");
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let backoff = Backoff::default();
        assert_eq!(backoff.jittered(3, 0.0), Duration::from_secs(20));
        assert_eq!(backoff.jittered(3, 0.5), Duration::from_secs(30));
        assert!(backoff.jittered(3, 0.999_999) <= Duration::from_secs(40));
        assert_eq!(
            backoff.jittered(3, 7.0),
            Duration::from_secs(40),
            "out-of-range randomness is clamped"
        );
    }

    #[test]
    fn the_cap_never_exceeds_what_sqs_accepts() {
        let backoff = Backoff {
            base: Duration::from_secs(3600),
            cap: Duration::from_secs(24 * 3600),
        };
        assert_eq!(backoff.delay(10), SQS_MAX_VISIBILITY);
    }
}
