use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::store::IdemBegin;

contract!(
    an_idempotency_key_is_fresh_then_in_flight_then_replayed,
    a_different_body_under_the_same_key_is_a_mismatch,
    an_aborted_or_abandoned_key_can_be_used_again,
    an_idempotent_answer_is_kept_for_a_day,
);

async fn an_idempotency_key_is_fresh_then_in_flight_then_replayed(b: &Backend) {
    let s = &b.store;
    let now = morning();
    assert_eq!(
        s.idem_begin("k1", "fp", now).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(
        s.idem_begin("k1", "fp", now).await.unwrap(),
        IdemBegin::InFlight
    );
    s.idem_finish("k1", 201, "{\"id\":\"x\"}").await.unwrap();
    let replay = IdemBegin::Replay {
        status: 201,
        body: "{\"id\":\"x\"}".into(),
    };
    assert_eq!(s.idem_begin("k1", "fp", now).await.unwrap(), replay);
    // Aborting a finished key changes nothing.
    s.idem_abort("k1").await.unwrap();
    assert_eq!(s.idem_begin("k1", "fp", now).await.unwrap(), replay);
    // Finishing or aborting an unknown key is harmless.
    s.idem_finish("nope", 200, "{}").await.unwrap();
    s.idem_abort("nope").await.unwrap();
    assert_eq!(
        s.idem_begin("nope", "fp", now).await.unwrap(),
        IdemBegin::Fresh
    );
}

async fn a_different_body_under_the_same_key_is_a_mismatch(b: &Backend) {
    let s = &b.store;
    let now = morning();
    assert_eq!(
        s.idem_begin("k2", "a", now).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(
        s.idem_begin("k2", "b", now).await.unwrap(),
        IdemBegin::Mismatch
    );
    s.idem_finish("k2", 409, "{}").await.unwrap();
    assert_eq!(
        s.idem_begin("k2", "b", now).await.unwrap(),
        IdemBegin::Mismatch
    );
}

async fn an_aborted_or_abandoned_key_can_be_used_again(b: &Backend) {
    let s = &b.store;
    let now = morning();
    assert_eq!(
        s.idem_begin("k3", "a", now).await.unwrap(),
        IdemBegin::Fresh
    );
    s.idem_abort("k3").await.unwrap();
    assert_eq!(
        s.idem_begin("k3", "b", now).await.unwrap(),
        IdemBegin::Fresh
    );
    // Still in flight a minute later: the request that took it crashed.
    let later = now + Duration::seconds(61);
    assert_eq!(
        s.idem_begin("k3", "c", later).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(
        s.idem_begin("k3", "c", later).await.unwrap(),
        IdemBegin::InFlight
    );
}

async fn an_idempotent_answer_is_kept_for_a_day(b: &Backend) {
    let s = &b.store;
    let now = morning();
    assert_eq!(
        s.idem_begin("k4", "a", now).await.unwrap(),
        IdemBegin::Fresh
    );
    s.idem_finish("k4", 200, "{}").await.unwrap();
    let within = now + Duration::hours(23);
    assert!(matches!(
        s.idem_begin("k4", "a", within).await.unwrap(),
        IdemBegin::Replay { status: 200, .. }
    ));
    let after = now + Duration::hours(25);
    assert_eq!(
        s.idem_begin("k4", "b", after).await.unwrap(),
        IdemBegin::Fresh
    );
}
