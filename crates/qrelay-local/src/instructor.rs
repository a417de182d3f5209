//! What the instructor page says, in sentences: the results of its buttons, and the warning that questions are
//! about to reach the dead-letter queue. Locally a chat outage of a few minutes uses up the 30 receives (the
//! backoff is 2 to 10 s so that demos resolve quickly), and without this warning every question would be
//! dead-lettered without a word.

use std::time::Duration;

use crate::system::Retries;

/// The share of the receive budget after which the page warns: past a fifth (6 of 30 receives), a question has
/// failed several times in a row, which is an outage rather than a hiccup.
const WARN_AFTER_SHARE: u32 = 5;

/// Warnings for the instructor page: questions nearing the dead-letter queue (`counts`: the receive count of
/// each question in the queue, when known), and dead letters waiting for a redrive.
pub fn warnings(counts: Option<&[u32]>, dead_letters: u64, retries: Retries) -> Vec<String> {
    let mut out = Vec::new();
    let max = retries.max_receive_count;
    let threshold = (max / WARN_AFTER_SHARE).max(1);
    let failing: Vec<u32> = counts
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|&c| c > threshold)
        .collect();
    if let Some(&most) = failing.iter().max() {
        let n = failing.len();
        let (questions, have, they, move_) = if n == 1 {
            ("1 question".to_owned(), "has", "it", "moves")
        } else {
            (format!("{n} questions"), "have", "they", "move")
        };
        let tried = if failing.iter().all(|&c| c == most) {
            format!("{most} of {max} times")
        } else {
            format!("up to {most} of {max} times")
        };
        let first = if n == 1 {
            they.to_owned()
        } else {
            "the first".to_owned()
        };
        let first_moves = if n == 1 { move_ } else { "moves" };
        out.push(format!(
            "{questions} {have} been tried {tried} without reaching the chat; at this rate {first} {first_moves} \
             to the dead-letter queue in {}. End the outage or fix the chat before then (\"Retry waiting \
             questions now\" delivers at once).",
            about(time_to_dead_letter(most, retries))
        ));
    }
    if dead_letters > 0 {
        let (questions, are) = if dead_letters == 1 {
            ("1 question is".to_owned(), "it")
        } else {
            (format!("{dead_letters} questions are"), "them")
        };
        out.push(format!(
            "{questions} in the dead-letter queue and will not be retried: once the chat works, \"Redrive dead \
             letters\" brings {are} back."
        ));
    }
    out
}

/// The expected wait before a message received `count` times is dead-lettered: its current backoff and one per
/// remaining receive, each jittered to three quarters of the full delay on average, as the consumer does.
fn time_to_dead_letter(count: u32, retries: Retries) -> Duration {
    (count..=retries.max_receive_count)
        .map(|n| delay(retries, n).mul_f64(0.75))
        .sum()
}

/// The consumer's backoff before jitter: doubling from the base, at most the cap. (The library keeps its own
/// `Backoff::delay` crate-private; this is the same schedule, documented in `qrelay::consumer::backoff`.)
fn delay(retries: Retries, receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(31);
    retries
        .backoff
        .base
        .saturating_mul(1u32 << doublings)
        .min(retries.backoff.cap)
}

fn about(wait: Duration) -> String {
    let minutes = (wait.as_secs() + 30) / 60;
    match minutes {
        0 => "less than a minute".to_owned(),
        1 => "about a minute".to_owned(),
        m => format!("about {m} minutes"),
    }
}

/// The outage switch's new state, in a sentence.
pub fn outage_changed(down: bool) -> String {
    if down {
        "The chat is now down (simulated): new questions are still taken and wait in the queue, retried with \
         backoff."
            .to_owned()
    } else {
        "The chat is back: waiting questions are delivered at their next retry, or now with \"Retry waiting \
         questions now\"."
            .to_owned()
    }
}

/// What "retry now" did.
pub fn retried(waiting: usize) -> String {
    match waiting {
        0 => "No question was waiting for a retry.".to_owned(),
        1 => "1 waiting question is being tried again now.".to_owned(),
        n => format!("{n} waiting questions are being tried again now."),
    }
}

/// The redrive function's own summary as a sentence on the page.
pub fn redrive_result(message: &str) -> String {
    let mut chars = message.chars();
    let mut sentence: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrelay::consumer::Backoff;

    fn local() -> Retries {
        Retries {
            backoff: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(10),
            },
            max_receive_count: 30,
        }
    }

    #[test]
    fn nothing_to_say_while_questions_are_delivered() {
        assert!(warnings(Some(&[]), 0, local()).is_empty());
        assert!(
            warnings(Some(&[1, 2, 6]), 0, local()).is_empty(),
            "a few failed receives are a hiccup, not an outage"
        );
        assert!(
            warnings(None, 0, local()).is_empty(),
            "SQS: counts unknown, no dead letters"
        );
    }

    #[test]
    fn a_long_outage_warns_with_the_time_left() {
        let warnings = warnings(Some(&[12]), 0, local());
        // Receives 12 to 30 wait 10 s each (the cap), three quarters of it on average: 19 × 7.5 s ≈ 2.4 min.
        assert_eq!(
            warnings,
            [
                "1 question has been tried 12 of 30 times without reaching the chat; at this rate it moves to the \
              dead-letter queue in about 2 minutes. End the outage or fix the chat before then (\"Retry waiting \
              questions now\" delivers at once)."
            ]
        );
    }

    #[test]
    fn several_questions_are_counted_and_the_first_to_go_is_timed() {
        let warnings = warnings(Some(&[1, 9, 29, 7]), 0, local());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("3 questions have been tried up to 29 of 30 times"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("the first moves to the dead-letter queue in less than a minute"),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_aws_schedule_gives_hours() {
        let aws = Retries {
            backoff: Backoff::default(),
            max_receive_count: 30,
        };
        // Receives 8 to 30 wait 15 min each: 23 × 11.25 min ≈ 259 min.
        let warnings = warnings(Some(&[8]), 0, aws);
        assert!(warnings[0].contains("in about 259 minutes"), "{warnings:?}");
    }

    #[test]
    fn dead_letters_are_counted() {
        assert_eq!(
            warnings(None, 2, local()),
            [
                "2 questions are in the dead-letter queue and will not be retried: once the chat works, \"Redrive \
              dead letters\" brings them back."
            ]
        );
        assert!(warnings(Some(&[]), 1, local())[0].starts_with("1 question is in the dead-letter queue"));
    }

    #[test]
    fn results_read_as_sentences() {
        assert_eq!(retried(0), "No question was waiting for a retry.");
        assert_eq!(retried(3), "3 waiting questions are being tried again now.");
        assert_eq!(
            redrive_result("moved 1 message(s) back; the dead-letter queue is empty"),
            "Moved 1 message(s) back; the dead-letter queue is empty."
        );
        assert!(outage_changed(true).starts_with("The chat is now down"));
    }
}
