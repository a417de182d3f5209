//! The store's rules, on the in-memory store (the DynamoDB store is held to the same ones by the integration
//! tests against moto): one decision per held question, expiry, the flood counter's distinct texts.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::domain::{QuestionText, RoomName};

fn room() -> RoomName {
    RoomName::parse("general").expect("room")
}

fn question(text: &str) -> Question {
    Question {
        id: QuestionId::new_random(),
        room: room(),
        text: QuestionText::parse(text, 1000).expect("text"),
        nickname: None,
        submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("time")
}

#[test]
fn room_states_parse_from_their_names_only() {
    for state in RoomState::ALL {
        assert_eq!(state.name().parse::<RoomState>(), Ok(state));
    }
    let err = "closed".parse::<RoomState>().expect_err("not a state");
    assert!(err.to_string().contains("open, review or paused"), "{err}");
}

#[tokio::test]
async fn concurrent_approvals_decide_once() {
    let store = Arc::new(MemoryStore::new());
    let now = at("2026-11-22T09:31:00Z");
    let q = question("hold me");
    store
        .hold(&q, HoldReason::Review, now, at("2026-12-06T09:31:00Z"))
        .await
        .expect("hold");
    let approvals = (0..8).map(|_| {
        let store = store.clone();
        let room = room();
        tokio::spawn(async move { store.decide(&room, q.id, Decision::Approve, now).await.expect("decide") })
    });
    let results = futures_util::future::join_all(approvals).await;
    let now_count = results
        .iter()
        .filter(|r| matches!(r.as_ref().expect("task"), Decided::Now(_)))
        .count();
    assert_eq!(now_count, 1, "exactly one approval publishes: {results:?}");
    assert!(results.iter().all(|r| matches!(
        r.as_ref().expect("task"),
        Decided::Now(_) | Decided::Already(HeldStatus::Approved)
    )));
    let reject = store
        .decide(&room(), q.id, Decision::Reject, now)
        .await
        .expect("decide");
    assert_eq!(
        reject,
        Decided::Already(HeldStatus::Approved),
        "an approved question can't be rejected"
    );
    assert_eq!(
        store
            .hold(&q, HoldReason::Review, now, at("2026-12-06T09:31:00Z"))
            .await
            .expect("hold"),
        HeldStatus::Approved,
        "holding it again answers its decision"
    );
}

#[tokio::test]
async fn an_approval_that_never_published_can_be_taken_over_later_but_not_at_once() {
    let store = MemoryStore::new();
    let q = question("approve me");
    let t0 = at("2026-11-22T09:31:00Z");
    store
        .hold(&q, HoldReason::Review, t0, at("2026-12-06T00:00:00Z"))
        .await
        .expect("hold");
    assert!(matches!(
        store
            .decide(&room(), q.id, Decision::Approve, t0)
            .await
            .expect("decide"),
        Decided::Now(_)
    ));
    // Its function died before publishing: a second tap soon after does nothing, one after the takeover window
    // publishes it.
    let soon = t0.checked_add(Duration::from_secs(5)).expect("t");
    assert_eq!(
        store
            .decide(&room(), q.id, Decision::Approve, soon)
            .await
            .expect("decide"),
        Decided::Already(HeldStatus::Approved)
    );
    let later = t0.checked_add(APPROVAL_TAKEOVER_AFTER).expect("t");
    assert!(matches!(
        store
            .decide(&room(), q.id, Decision::Approve, later)
            .await
            .expect("decide"),
        Decided::Now(_)
    ));
    store.mark_published(&room(), q.id, later).await.expect("mark");
    let much_later = later.checked_add(APPROVAL_TAKEOVER_AFTER * 2).expect("t");
    assert_eq!(
        store
            .decide(&room(), q.id, Decision::Approve, much_later)
            .await
            .expect("decide"),
        Decided::Already(HeldStatus::Approved),
        "once published, never again"
    );
}

#[tokio::test]
async fn expired_held_questions_are_gone() {
    let store = MemoryStore::new();
    let q = question("old");
    store
        .hold(
            &q,
            HoldReason::Flood,
            at("2026-11-01T00:00:00Z"),
            at("2026-11-15T00:00:00Z"),
        )
        .await
        .expect("hold");
    assert_eq!(
        store
            .held(&room(), at("2026-11-14T23:59:59Z"))
            .await
            .expect("held")
            .len(),
        1
    );
    assert!(
        store
            .held(&room(), at("2026-11-15T00:00:00Z"))
            .await
            .expect("held")
            .is_empty()
    );
    assert_eq!(
        store
            .decide(&room(), q.id, Decision::Approve, at("2026-11-16T00:00:00Z"))
            .await
            .expect("decide"),
        Decided::Unknown
    );
}

#[tokio::test]
async fn the_flood_counter_counts_distinct_texts_per_room_and_minute() {
    let store = MemoryStore::new();
    assert_eq!(store.count_arrival(&question("a")).await.expect("count"), 1);
    assert_eq!(
        store.count_arrival(&question("A")).await.expect("count"),
        1,
        "case folded"
    );
    assert_eq!(store.count_arrival(&question("b")).await.expect("count"), 2);
    let mut next_minute = question("c");
    next_minute.submitted_at = at("2026-11-22T09:31:00Z");
    assert_eq!(
        store.count_arrival(&next_minute).await.expect("count"),
        1,
        "a new minute starts again"
    );
}

#[tokio::test]
async fn only_an_open_room_trips_and_an_instructors_switch_clears_the_notice() {
    let store = MemoryStore::new();
    let now = at("2026-11-22T09:31:00Z");
    let notice = flood_notice_id(&room(), 100);
    assert!(store.trip_flood(&room(), notice, now).await.expect("trip"));
    assert!(!store.trip_flood(&room(), notice, now).await.expect("trip"), "once");
    let status = store.room_status(&room()).await.expect("status");
    assert_eq!(status.pending_notice, Some(notice));
    store.set_room_state(&room(), RoomState::Open, now).await.expect("set");
    let status = store.room_status(&room()).await.expect("status");
    assert_eq!((status.state, status.pending_notice), (RoomState::Open, None));
}

#[test]
fn flood_notice_ids_are_stable_per_room_and_minute_and_valid_question_ids() {
    let a = flood_notice_id(&room(), 29_533_590);
    assert_eq!(a, flood_notice_id(&room(), 29_533_590));
    assert_ne!(a, flood_notice_id(&room(), 29_533_591));
    assert_ne!(a, flood_notice_id(&RoomName::parse("other").expect("room"), 29_533_590));
    assert_eq!(
        QuestionId::parse(&a.to_string()),
        Some(a),
        "a v4 UUID, as the chat adapters expect"
    );
}
