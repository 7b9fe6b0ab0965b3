//! Retention on both stores: `purge` deletes dead holds (with their tokens and pointers) and old
//! idempotency records and keeps business records; released and expired holds leave the day's
//! read. One test reads DynamoDB's raw items and runs there only.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::store::{IdemBegin, TokenOwner};

macro_rules! on_dynamodb {
    ($($name:ident),* $(,)?) => {
        mod dynamodb_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = crate::backend::Backend::dynamo(stringify!($name)).await {
                        super::$name(&b).await;
                    }
                }
            )*
        }
    };
}

contract!(
    released_and_expired_holds_leave_the_day_but_stay_on_the_staff_list,
    purge_deletes_dead_holds_and_old_idempotency_records_and_keeps_business_records,
    a_hold_swept_long_after_it_expired_ages_from_its_expiry,
);

// Reads the table's raw items.
on_dynamodb!(purge_clears_every_member_tables_minutes_of_a_combined_hold);

async fn released_and_expired_holds_leave_the_day_but_stay_on_the_staff_list(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Rangé").await;
    let now = morning();
    let (released, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    let (expired, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t2"], 1, now)).await;
    let mut later = hold_at(&r, at(19, 0), 90);
    later.expires_at = Some(now + Duration::hours(1));
    let (kept, _) = won(s, new(later, &["t3"], 1, now)).await;
    let v0 = s.day(r.id, day()).await.unwrap().version;
    done(
        s.transition(transition(released.id, Status::Held, Status::Released, now))
            .await
            .unwrap(),
    );
    let swept = s.expire_due(expired.expires_at.unwrap(), 10).await.unwrap();
    assert_eq!(swept.len(), 1, "only t2's hold is due: {swept:?}");
    let d = s.day(r.id, day()).await.unwrap();
    assert!(d.version >= v0 + 2, "{} vs {v0}", d.version);
    let ids: Vec<_> = d.reservations.iter().map(|x| x.id).collect();
    assert_eq!(ids, [kept.id], "the day reads live reservations only");
    let listed: Vec<_> = s
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.status))
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.contains(&(released.id, Status::Released)));
    assert!(listed.contains(&(expired.id, Status::Expired)));
    // Found by id where they now live, and the time they held is free.
    assert_eq!(
        s.reservation(released.id).await.unwrap().unwrap().status,
        Status::Released
    );
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1", "t2"], 1, now)).await;
}

async fn a_hold_swept_long_after_it_expired_ages_from_its_expiry(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Endormi").await;
    let now = morning();
    let mut h = hold_at(&r, at(19, 0), 60);
    h.expires_at = Some(now + Duration::seconds(1));
    let (hold, _) = won(s, new(h, &["t1"], 1, now)).await;
    let expiry = hold.expires_at.unwrap();
    // The server was down for three days: the sweep comes long after the expiry.
    let swept = s.expire_due(expiry + Duration::days(3), 10).await.unwrap();
    assert_eq!(swept.len(), 1);
    let read = s.reservation(hold.id).await.unwrap().unwrap();
    assert_eq!(read.status, Status::Expired);
    assert_eq!(read.updated_at, expiry, "it changed when it expired");
    // Retention of a day, counted from the expiry, not from the sweep.
    assert_eq!(s.purge(expiry + Duration::days(1), 100).await.unwrap(), 1);
    assert!(s.reservation(hold.id).await.unwrap().is_none());
}

async fn purge_deletes_dead_holds_and_old_idempotency_records_and_keeps_business_records(
    b: &Backend,
) {
    let s = &b.store;
    let r = created(s, "Ménage").await;
    let now = morning();
    let hold = |t: &str, start| new(hold_at(&r, start, 60), &[t], 1, now);
    let (released, _) = won(s, hold("t1", at(18, 0))).await;
    done(
        s.transition(transition(released.id, Status::Held, Status::Released, now))
            .await
            .unwrap(),
    );
    let (swept, _) = won(s, hold("t2", at(18, 0))).await;
    assert_eq!(
        s.expire_due(swept.expires_at.unwrap(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Expired long ago and never swept: purged where it lies.
    let mut stale = hold_at(&r, at(20, 0), 60);
    stale.expires_at = Some(now + Duration::seconds(1));
    let stale_new = new(stale, &["t1"], 1, now);
    let stale_token = stale_new.token_hash.clone().unwrap();
    let (stale, _) = won(s, stale_new).await;
    let (confirmed, _) = won(s, hold("t3", at(18, 0))).await;
    done(
        s.transition(transition(
            confirmed.id,
            Status::Held,
            Status::Confirmed,
            now,
        ))
        .await
        .unwrap(),
    );
    let (cancelled, _) = won(s, hold("t3", at(21, 0))).await;
    done(
        s.transition(transition(
            cancelled.id,
            Status::Held,
            Status::Confirmed,
            now,
        ))
        .await
        .unwrap(),
    );
    done(
        s.transition(transition(
            cancelled.id,
            Status::Confirmed,
            Status::Cancelled,
            now,
        ))
        .await
        .unwrap(),
    );
    let mut live = hold_at(&r, at(21, 0), 60);
    live.expires_at = Some(now + Duration::hours(3));
    let (live, _) = won(s, new(live, &["t2"], 1, now)).await;
    assert_eq!(
        s.idem_begin("old", "fp", now).await.unwrap(),
        IdemBegin::Fresh
    );
    s.idem_finish("old", 201, "{}").await.unwrap();
    let young_at = now + Duration::hours(2);
    assert_eq!(
        s.idem_begin("young", "fp", young_at).await.unwrap(),
        IdemBegin::Fresh
    );

    let before = now + Duration::hours(1);
    // Small batches: at most `limit` a call, then the rest.
    assert_eq!(s.purge(before, 2).await.unwrap(), 2);
    assert_eq!(s.purge(before, 100).await.unwrap(), 2);
    assert_eq!(
        s.purge(before, 100).await.unwrap(),
        0,
        "nothing left to purge"
    );

    for gone in [released.id, swept.id, stale.id] {
        assert!(s.reservation(gone).await.unwrap().is_none(), "{gone}");
    }
    assert_eq!(s.token_owner(&stale_token).await.unwrap(), None);
    for (kept, status) in [
        (confirmed.id, Status::Confirmed),
        (cancelled.id, Status::Cancelled),
        (live.id, Status::Held),
    ] {
        assert_eq!(s.reservation(kept).await.unwrap().unwrap().status, status);
    }
    let listed = ids_on(s, r.id).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(matches!(
        s.token_owner(&format!("staff-{}", r.id)).await.unwrap(),
        Some(TokenOwner::Staff { .. })
    ));
    // The old record is gone (a fresh start), the young one still in flight.
    assert_eq!(
        s.idem_begin("old", "fp", now).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(
        s.idem_begin("young", "fp", young_at).await.unwrap(),
        IdemBegin::InFlight
    );
    // The day still reads cleanly (no torn read on a purged hold) and the purged time is free.
    let d = s.day(r.id, day()).await.unwrap();
    // The cancelled one is kept (the staff list shows it), out of the day read.
    assert_eq!(d.reservations.len(), 2, "confirmed, live");
    assert_eq!(s.cancelled_on(r.id, day()).await.unwrap().len(), 1);
    let again = reservation(&r, at(20, 0), 60, 2, Status::Held, before);
    won(s, new(again, &["t1"], 1, before)).await;
}

/// Every `(sort key, attribute)` of the items of `pk` whose value names reservation `id`.
async fn naming(table: &str, pk: &str, id: uuid::Uuid) -> Vec<(String, String)> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let out = client
        .query()
        .table_name(table)
        .consistent_read(true)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .send()
        .await
        .unwrap();
    let mine = id.simple().to_string();
    let mut found = Vec::new();
    for item in out.items() {
        let sk = item["sk"].as_s().unwrap().clone();
        for (k, v) in item {
            if v.as_s().is_ok_and(|v| v.ends_with(&mine)) {
                found.push((sk.clone(), k.clone()));
            }
        }
    }
    found
}

async fn purge_clears_every_member_tables_minutes_of_a_combined_hold(b: &Backend) {
    let s = &b.store;
    let table = b.dynamo_table().unwrap();
    let r = combined(s, "Débarras").await;
    let now = morning();
    // Held on c34, expired long ago and never swept.
    let mut party6 = reservation(&r, at(19, 0), 150, 6, Status::Held, now);
    party6.expires_at = Some(now + Duration::seconds(1));
    let (c, _) = won(s, new_on(party6, vec![combo("c34", &["t3", "t4"])], now)).await;
    let cells = |t: &str| format!("O#{}#{t}", r.id);
    for t in ["t3", "t4"] {
        assert_eq!(
            naming(table, &cells(t), c.id).await.len(),
            150,
            "{t}: one per minute"
        );
    }
    assert_eq!(s.purge(now + Duration::hours(1), 100).await.unwrap(), 1);
    assert!(s.reservation(c.id).await.unwrap().is_none());
    for t in ["t3", "t4"] {
        assert_eq!(naming(table, &cells(t), c.id).await, [], "{t}");
    }
    let later = now + Duration::hours(1);
    for t in ["t3", "t4"] {
        let single = reservation(&r, at(19, 0), 90, 2, Status::Held, later);
        won(s, new(single, &[t], 1, later)).await;
    }
}
