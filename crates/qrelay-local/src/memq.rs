//! An in-process queue with the SQS semantics qrelay relies on: visibility timeouts, receive counts, receipt
//! handles that change on every receive, and a redrive policy that moves a message to a dead-letter queue when
//! it is received once more after `max_receive_count` receives. It stands in for SNS + SQS when qrelay runs on
//! one machine, so the outage and redrive paths can be seen working without AWS.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use tokio::time::Instant;

/// One queue. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemQueue {
    name: String,
    state: Mutex<State>,
    redrive: Option<(u32, Arc<MemQueue>)>,
    /// Wakes the consumer loop when a message is sent, instead of leaving it to its next poll.
    arrived: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Stored>,
    next_receipt: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    attributes: HashMap<String, SqsMessageAttribute>,
    receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    pub visible: usize,
    pub in_flight: usize,
}

impl Depth {
    pub fn total(&self) -> usize {
        self.visible + self.in_flight
    }
}

impl MemQueue {
    /// A queue without a redrive policy (a dead-letter queue).
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            state: Mutex::default(),
            redrive: None,
            arrived: tokio::sync::Notify::new(),
        })
    }

    /// A queue whose messages move to `dead_letters` when received after `max_receive_count` receives.
    pub fn with_dead_letters(name: &str, max_receive_count: u32, dead_letters: Arc<MemQueue>) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            state: Mutex::default(),
            redrive: Some((max_receive_count, dead_letters)),
            arrived: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock can't leave the queue half-updated: every update is a single assignment.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a message; returns its id.
    pub fn send(&self, body: String, attributes: HashMap<String, SqsMessageAttribute>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let message = Stored {
            id: id.clone(),
            body,
            attributes,
            receive_count: 0,
            visible_at: Instant::now(),
            receipt: None,
        };
        self.lock().messages.push_back(message);
        // A permit is kept if nobody waits yet, so a message sent between a poll and the wait is not missed.
        self.arrived.notify_one();
        id
    }

    /// Returns when a message is sent (or one was sent since the last call), as SQS's long polling does.
    pub async fn arrival(&self) {
        self.arrived.notified().await;
    }

    /// Receives up to `max` visible messages (oldest first), hiding them for `visibility`. Messages already
    /// received `max_receive_count` times move to the dead-letter queue instead, as SQS does.
    pub fn receive(&self, max: usize, visibility: Duration) -> Vec<SqsMessage> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut received = Vec::new();
        let mut index = 0;
        while index < state.messages.len() && received.len() < max {
            if state.messages[index].visible_at > now {
                index += 1;
                continue;
            }
            if let Some((max_receives, dead_letters)) = &self.redrive {
                if state.messages[index].receive_count >= *max_receives {
                    if let Some(mut message) = state.messages.remove(index) {
                        message.receipt = None;
                        message.visible_at = now;
                        dead_letters.lock().messages.push_back(message);
                    }
                    continue;
                }
            }
            state.next_receipt += 1;
            let receipt = format!("{}-{}-{}", self.name, state.messages[index].id, state.next_receipt);
            let message = &mut state.messages[index];
            message.receive_count += 1;
            message.visible_at = now + visibility;
            message.receipt = Some(receipt.clone());
            received.push(to_record(message, &receipt));
            index += 1;
        }
        received
    }

    /// Deletes a received message, if `receipt` is its latest receipt handle.
    pub fn delete(&self, receipt: &str) -> bool {
        let mut state = self.lock();
        let before = state.messages.len();
        state.messages.retain(|m| m.receipt.as_deref() != Some(receipt));
        state.messages.len() < before
    }

    /// Hides a received message for `delay` from now, if `receipt` is its latest receipt handle.
    pub fn change_visibility(&self, receipt: &str, delay: Duration) -> bool {
        let mut state = self.lock();
        match state
            .messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt))
        {
            Some(message) => {
                message.visible_at = Instant::now() + delay;
                true
            }
            None => false,
        }
    }

    /// Makes every message visible now: the instructor page's "retry now" after an outage.
    pub fn release_all(&self) {
        let now = Instant::now();
        for message in self.lock().messages.iter_mut() {
            message.visible_at = now;
        }
    }

    /// Takes up to `max` messages out, visible or not (for moving them elsewhere), oldest first.
    pub fn take(&self, max: usize) -> Vec<(String, HashMap<String, SqsMessageAttribute>)> {
        let mut state = self.lock();
        let n = max.min(state.messages.len());
        state.messages.drain(..n).map(|m| (m.body, m.attributes)).collect()
    }

    /// The bodies of every message, without receiving them.
    pub fn bodies(&self) -> Vec<String> {
        self.lock().messages.iter().map(|m| m.body.clone()).collect()
    }

    /// How many times each message has been received so far, oldest message first.
    pub fn receive_counts(&self) -> Vec<u32> {
        self.lock().messages.iter().map(|m| m.receive_count).collect()
    }

    pub fn depth(&self) -> Depth {
        let now = Instant::now();
        let state = self.lock();
        let visible = state.messages.iter().filter(|m| m.visible_at <= now).count();
        Depth {
            visible,
            in_flight: state.messages.len() - visible,
        }
    }
}

fn to_record(message: &Stored, receipt: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message.id.clone());
    record.receipt_handle = Some(receipt.to_owned());
    record.body = Some(message.body.clone());
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), message.receive_count.to_string());
    record.message_attributes = message.attributes.clone();
    record.event_source = Some("aws:sqs".into());
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (Arc<MemQueue>, Arc<MemQueue>) {
        let dlq = MemQueue::new("dlq");
        (MemQueue::with_dead_letters("q", 30, dlq.clone()), dlq)
    }

    #[tokio::test]
    async fn a_sent_message_wakes_a_waiting_consumer_even_if_it_came_before_the_wait() {
        let (q, _) = queue();
        let waiting = tokio::time::timeout(Duration::from_millis(50), q.arrival()).await;
        assert!(waiting.is_err(), "nothing sent, nothing to wake for");
        q.send("a".into(), HashMap::new());
        tokio::time::timeout(Duration::from_secs(5), q.arrival())
            .await
            .expect("a message sent before the wait still wakes it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_received_message_is_hidden_for_its_visibility_timeout() {
        let (q, _) = queue();
        q.send("a".into(), HashMap::new());

        assert_eq!(q.receive(10, Duration::from_secs(30)).len(), 1);
        assert!(
            q.receive(10, Duration::from_secs(30)).is_empty(),
            "hidden while in flight"
        );
        assert_eq!(
            q.depth(),
            Depth {
                visible: 0,
                in_flight: 1
            }
        );

        tokio::time::advance(Duration::from_secs(31)).await;
        let again = q.receive(10, Duration::from_secs(30));
        assert_eq!(again.len(), 1, "visible again after the timeout");
        assert_eq!(
            again[0].attributes["ApproximateReceiveCount"], "2",
            "receive count grows"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn receipt_handles_change_on_every_receive() {
        let (q, _) = queue();
        q.send("a".into(), HashMap::new());
        let first = q.receive(1, Duration::ZERO).remove(0).receipt_handle.expect("handle");
        let second = q
            .receive(1, Duration::from_secs(30))
            .remove(0)
            .receipt_handle
            .expect("handle");

        assert_ne!(first, second);
        assert!(!q.delete(&first), "a stale handle deletes nothing");
        assert!(!q.change_visibility(&first, Duration::ZERO), "nor changes visibility");
        assert!(q.delete(&second), "the latest handle deletes");
        assert_eq!(q.depth().total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn change_visibility_reschedules_the_next_receive() {
        let (q, _) = queue();
        q.send("a".into(), HashMap::new());
        let handle = q
            .receive(1, Duration::from_secs(30))
            .remove(0)
            .receipt_handle
            .expect("handle");

        assert!(q.change_visibility(&handle, Duration::from_secs(300)));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(q.receive(1, Duration::from_secs(30)).is_empty(), "still backing off");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(q.receive(1, Duration::from_secs(30)).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_thirty_first_receive_moves_the_message_to_the_dead_letter_queue() {
        let (q, dlq) = queue();
        q.send("keep me".into(), HashMap::new());
        for n in 1..=30 {
            let got = q.receive(10, Duration::ZERO);
            assert_eq!(got.len(), 1, "receive {n} succeeds");
        }
        assert_eq!(q.receive_counts(), [30], "counted without receiving");
        assert!(q.receive(10, Duration::ZERO).is_empty(), "the 31st moves it instead");
        assert_eq!(q.depth().total(), 0);
        assert_eq!(dlq.bodies(), ["keep me"], "body intact in the DLQ");
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_at_most_the_requested_size_and_oldest_first() {
        let (q, _) = queue();
        for n in 0..25 {
            q.send(format!("m{n}"), HashMap::new());
        }
        let batch = q.receive(10, Duration::from_secs(30));
        let bodies: Vec<&str> = batch.iter().filter_map(|r| r.body.as_deref()).collect();
        assert_eq!(bodies, (0..10).map(|n| format!("m{n}")).collect::<Vec<_>>());
        assert_eq!(q.receive(10, Duration::from_secs(30)).len(), 10);
        assert_eq!(q.receive(10, Duration::from_secs(30)).len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn taking_messages_for_a_redrive_empties_the_dead_letter_queue_in_order() {
        let dlq = MemQueue::new("dlq");
        for n in 0..3 {
            dlq.send(format!("d{n}"), HashMap::new());
        }
        let taken: Vec<String> = dlq.take(2).into_iter().map(|(b, _)| b).collect();
        assert_eq!(taken, ["d0", "d1"]);
        assert_eq!(dlq.depth().total(), 1);
    }
}
