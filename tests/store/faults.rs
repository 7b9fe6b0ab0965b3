//! What DynamoDB Local never does — transaction conflicts, throttling, an answer lost after the
//! write committed — injected under the store's SDK client by a wrapping HTTP connector. In
//! each case the outcome is still right: no hold lost, none doubled, no win answered as a loss.
use crate::fixtures::*;
use crate::kit::app::unique_table;
use crate::kit::{require, Service};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tablecast::domain::reservation::Status;
use tablecast::store::dynamo::items::WIDE_STEP;
use tablecast::store::dynamo::DynamoStore;
use tablecast::store::{
    DynStore, HoldCap, IdemBegin, IdemRecord, InsertOutcome, StoreError, TransitionOutcome,
};

#[derive(Debug, Clone)]
pub(crate) enum Inject {
    /// Answered as a transaction conflict on the request's last item (a hold's last cell)
    /// without reaching DynamoDB.
    Conflict,
    /// Answered as a transaction conflict on the request's first item (a hold's own
    /// reservation, which no other hold writes) without reaching DynamoDB.
    ConflictOnFirst,
    /// Answered as throttled without reaching DynamoDB.
    Throttle,
    /// Reaches DynamoDB and commits; the answer never comes (the attempt times out).
    CommitThenTimeout,
    /// Reaches DynamoDB and commits; the answer is replaced by a 500.
    CommitThen500,
    /// Hangs before it is sent (the attempt times out; nothing was written).
    TimeoutUnsent,
    /// A query answered with no items, as if it had run before everything else.
    StaleRead,
    /// Held before it is sent until the test opens the gate (a read overtaken by a write).
    Gated(Arc<Gate>),
}

/// Where a [`Inject::Gated`] request waits.
#[derive(Debug)]
pub(crate) struct Gate {
    arrived: tokio::sync::Semaphore,
    open: tokio::sync::Semaphore,
}

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate {
            arrived: tokio::sync::Semaphore::new(0),
            open: tokio::sync::Semaphore::new(0),
        })
    }

    /// Waits until the request is held at the gate (at most 10 s).
    pub(crate) async fn arrived(&self) {
        let held = tokio::time::timeout(Duration::from_secs(10), self.arrived.acquire())
            .await
            .expect("the gated request arrived")
            .unwrap();
        held.forget();
    }

    pub(crate) fn open(&self) {
        self.open.add_permits(1);
    }
}

/// The next `times` calls of `op` whose request body contains `has` (when given) and not
/// `lacks` (when given) get `what`.
#[derive(Debug)]
struct Rule {
    op: String,
    what: Inject,
    times: usize,
    has: Option<String>,
    lacks: Option<String>,
}

impl Rule {
    fn applies(&self, op: &str, body: &str) -> bool {
        self.op == op
            && self.times > 0
            && self.has.as_ref().is_none_or(|h| body.contains(h.as_str()))
            && self
                .lacks
                .as_ref()
                .is_none_or(|l| !body.contains(l.as_str()))
    }
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    calls: HashMap<String, usize>,
    /// The body of every `TransactWriteItems` sent, in order.
    transactions: Vec<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Faults {
    inner: SharedHttpClient,
    plan: Arc<Mutex<Plan>>,
}

impl Faults {
    /// The next `times` calls of operation `op` (e.g. `TransactWriteItems`) get `what`.
    pub(crate) fn inject(&self, op: &str, what: Inject, times: usize) {
        self.inject_where(op, None, None, what, times);
    }

    /// The next `times` calls of `op` whose request body contains `has` and not `lacks` (each
    /// when given) get `what`: one write of several picked out by what it carries.
    pub(crate) fn inject_where(
        &self,
        op: &str,
        has: Option<&str>,
        lacks: Option<&str>,
        what: Inject,
        times: usize,
    ) {
        self.plan.lock().unwrap().rules.push(Rule {
            op: op.into(),
            what,
            times,
            has: has.map(str::to_owned),
            lacks: lacks.map(str::to_owned),
        });
    }

    pub(crate) fn clear(&self) {
        self.plan.lock().unwrap().rules.clear();
    }

    pub(crate) fn calls(&self, op: &str) -> usize {
        *self.plan.lock().unwrap().calls.get(op).unwrap_or(&0)
    }

    pub(crate) fn transactions(&self) -> Vec<serde_json::Value> {
        self.plan.lock().unwrap().transactions.clone()
    }

    fn take(&self, op: &str, body: Option<&[u8]>) -> Option<Inject> {
        let mut p = self.plan.lock().unwrap();
        *p.calls.entry(op.into()).or_default() += 1;
        let body = body.map(String::from_utf8_lossy).unwrap_or_default();
        let rule = p.rules.iter_mut().find(|r| r.applies(op, &body))?;
        rule.times -= 1;
        Some(rule.what.clone())
    }
}

fn error(status: u16, kind: &str, extra: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": "injected by tests/store/faults.rs",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let mut res = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(body.to_string()),
    );
    res.headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    res
}

/// One cancellation reason per item of the request, the last one (or the first) a conflict.
fn conflict(request_body: Option<&[u8]>, first: bool) -> HttpResponse {
    let items = request_body
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1);
    let mut reasons: Vec<serde_json::Value> =
        vec![serde_json::json!({"Code": "None"}); items.saturating_sub(1)];
    let conflict = serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"});
    if first {
        reasons.insert(0, conflict);
    } else {
        reasons.push(conflict);
    }
    error(
        400,
        "TransactionCanceledException",
        serde_json::json!({ "CancellationReasons": reasons }),
    )
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    faults: Faults,
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or_default()
            .to_owned();
        let fault = self.faults.take(&op, request.body().bytes());
        if op == TX {
            if let Some(body) = request.body().bytes() {
                if let Ok(v) = serde_json::from_slice(body) {
                    self.faults.plan.lock().unwrap().transactions.push(v);
                }
            }
        }
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let never = Duration::from_secs(60);
            match fault {
                None => inner.call(request).await,
                Some(Inject::Conflict) => Ok(conflict(request.body().bytes(), false)),
                Some(Inject::ConflictOnFirst) => Ok(conflict(request.body().bytes(), true)),
                Some(Inject::Throttle) => Ok(error(
                    400,
                    "ProvisionedThroughputExceededException",
                    serde_json::json!({}),
                )),
                Some(Inject::CommitThenTimeout) => {
                    inner.call(request).await?;
                    tokio::time::sleep(never).await;
                    Ok(error(500, "InternalServerError", serde_json::json!({})))
                }
                Some(Inject::CommitThen500) => {
                    inner.call(request).await?;
                    Ok(error(500, "InternalServerError", serde_json::json!({})))
                }
                Some(Inject::StaleRead) => {
                    let mut res = HttpResponse::new(
                        StatusCode::try_from(200).unwrap(),
                        SdkBody::from(r#"{"Count":0,"Items":[],"ScannedCount":0}"#),
                    );
                    res.headers_mut()
                        .insert("content-type", "application/x-amz-json-1.0");
                    Ok(res)
                }
                Some(Inject::Gated(gate)) => {
                    gate.arrived.add_permits(1);
                    gate.open.acquire().await.unwrap().forget();
                    inner.call(request).await
                }
                Some(Inject::TimeoutUnsent) => {
                    tokio::time::sleep(never).await;
                    inner.call(request).await
                }
            }
        })
    }
}

impl HttpClient for Faults {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.clone(),
        })
    }
}

/// A plain store and a faulty one over the same fresh table.
pub(crate) async fn stores(test: &str) -> Option<(DynStore, DynStore, Faults)> {
    stores_keeping(test, None).await
}

/// [`stores`], the faulty one keeping dead holds `retention_days` when given.
pub(crate) async fn stores_keeping(
    test: &str,
    retention_days: Option<u32>,
) -> Option<(DynStore, DynStore, Faults)> {
    require(Service::DynamoDbLocal, test)?;
    let table = unique_table("faults");
    let plain: DynStore = Arc::new(DynamoStore::connect(&table).await.unwrap());
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let faults = Faults {
        inner: aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https(),
        plan: Arc::default(),
    };
    let conf = DynamoStore::client_config(&sdk)
        .http_client(faults.clone())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_millis(800))
                .build(),
        )
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let faulty = DynamoStore::with_client(client, &table).await.unwrap();
    let faulty: DynStore = Arc::new(match retention_days {
        Some(days) => faulty.keep_dead_for(days),
        None => faulty,
    });
    Some((plain, faulty, faults))
}

pub(crate) const TX: &str = "TransactWriteItems";

/// Exactly one reservation on the day, and the slot is taken for everyone else.
async fn exactly_one_hold(plain: &DynStore, r: &tablecast::domain::Restaurant, id: uuid::Uuid) {
    let on_day = plain.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(on_day.iter().map(|x| x.id).collect::<Vec<_>>(), [id]);
    // One change was counted: the restaurant's first wide version plus one.
    assert_eq!(plain.day(r.id, day()).await.unwrap().version, WIDE_STEP + 1);
    let again = insert(plain, new(hold_at(r, at(19, 0), 90), &["t1"], 1, morning())).await;
    assert!(is_lost(&again), "{again:?}");
}

/// A hold through `times` faults of kind `inject`; its write is sent `sends` times in all.
async fn hold_through_fault(inject: Inject, times: usize, sends: usize, test: &str) {
    let Some((plain, faulty, faults)) = stores(test).await else {
        return;
    };
    let r = created(&plain, "Fautes").await;
    faults.inject(TX, inject, times);
    let (h, _) = won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    assert_eq!(faults.calls(TX), sends, "how often the write was sent");
    exactly_one_hold(&plain, &r, h.id).await;
}

#[tokio::test]
async fn transaction_conflicts_are_retried_and_the_hold_still_wins() {
    hold_through_fault(Inject::Conflict, 3, 4, "transaction_conflicts").await;
}

#[tokio::test]
async fn a_throttled_hold_is_retried_and_wins() {
    hold_through_fault(Inject::Throttle, 3, 4, "throttled_hold").await;
}

#[tokio::test]
async fn a_hold_whose_answer_timed_out_after_it_committed_is_won_once() {
    // Read back as ours: never sent a second time.
    hold_through_fault(Inject::CommitThenTimeout, 1, 1, "commit_then_timeout").await;
}

#[tokio::test]
async fn a_hold_answered_500_after_it_committed_is_won_once() {
    hold_through_fault(Inject::CommitThen500, 1, 1, "commit_then_500").await;
}

#[tokio::test]
async fn a_hold_that_timed_out_before_it_was_sent_is_sent_again_and_wins() {
    // Read back as absent: sent again, once.
    hold_through_fault(Inject::TimeoutUnsent, 1, 2, "timeout_unsent").await;
}

#[tokio::test]
async fn throttled_reads_are_retried() {
    let Some((plain, faulty, faults)) = stores("throttled_reads").await else {
        return;
    };
    let r = created(&plain, "Lents").await;
    faults.inject("GetItem", Inject::Throttle, 2);
    faults.inject("Query", Inject::Throttle, 2);
    faults.inject("Query", Inject::CommitThen500, 1);
    assert!(faulty.restaurant(r.id).await.unwrap().is_some());
    assert!(faulty
        .day(r.id, day())
        .await
        .unwrap()
        .reservations
        .is_empty());
    assert_eq!(faults.calls("GetItem") + faults.calls("Query"), 8);
}

#[tokio::test]
async fn endless_throttling_answers_unavailable_and_writes_nothing() {
    let Some((plain, faulty, faults)) = stores("endless_throttling").await else {
        return;
    };
    let r = created(&plain, "Bouché").await;
    faults.inject(TX, Inject::Throttle, 1000);
    let out = faulty
        .insert_reservation(new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()))
        .await;
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    faults.clear();
    assert!(plain.reservations_on(r.id, day()).await.unwrap().is_empty());
    won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
}

#[tokio::test]
async fn a_loser_told_of_a_transaction_conflict_answers_lost_at_once() {
    let Some((plain, faulty, faults)) = stores("loser_under_conflict").await else {
        return;
    };
    let r = created(&plain, "Perdu").await;
    let (first, _) = won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    // The loser read the day before the winner committed, so it does try to write.
    faults.inject("Query", Inject::StaleRead, 1);
    faults.inject(TX, Inject::Conflict, 1);
    let lost = insert(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    assert!(matches!(lost, InsertOutcome::Lost { .. }), "{lost:?}");
    assert_eq!(
        faults.calls(TX),
        1,
        "a conflict over minutes another hold has is answered at once, not retried"
    );
    // With another fitting table the same race ends on that table.
    faults.inject("Query", Inject::StaleRead, 1);
    faults.inject(TX, Inject::Conflict, 1);
    let (second, _) = won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1", "t2"], 1, morning()),
    )
    .await;
    assert_eq!(second.table_id, table("t2"));
    assert_eq!(ids_on(&plain, r.id).await, [first.id, second.id]);
    assert_eq!(faults.calls(TX), 3, "t1 answered at once, then t2 written");
}

#[tokio::test]
async fn a_loser_reads_the_day_again_before_it_tries_its_next_option() {
    let Some((plain, faulty, faults)) = stores("loser_reads_again").await else {
        return;
    };
    let r = created(&plain, "Relu").await;
    for t in ["t1", "t2"] {
        won(&plain, new(hold_at(&r, at(19, 0), 90), &[t], 1, morning())).await;
    }
    // The hold read the day before both commits; losing t1 tells it the race moved on, and a
    // fresh read shows t2 gone too: it writes t3 next, not t2.
    faults.inject("Query", Inject::StaleRead, 1);
    let (h, _) = won(
        &faulty,
        new(
            hold_at(&r, at(19, 0), 90),
            &["t1", "t2", "t3"],
            1,
            morning(),
        ),
    )
    .await;
    assert_eq!(h.table_id, table("t3"));
    assert_eq!(
        faults.calls(TX),
        2,
        "t1 lost, then t3 written: t2 never tried"
    );
}

#[tokio::test]
async fn a_hold_meeting_a_write_in_flight_on_a_free_option_takes_its_next_option() {
    let Some((plain, faulty, faults)) = stores("in_flight_next_option").await else {
        return;
    };
    let r = created(&plain, "Ailleurs").await;
    // Another transaction is writing t1 right now: the hold does not wait for it.
    faults.inject(TX, Inject::Conflict, 1);
    let (h, _) = won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1", "t2"], 1, morning()),
    )
    .await;
    assert_eq!(h.table_id, table("t2"));
    assert_eq!(
        faults.calls(TX),
        2,
        "t1 met the conflict, t2 written at once"
    );
    assert_eq!(ids_on(&plain, r.id).await, [h.id]);
}

/// Holds of one instance that read the same day see the same best table. Each passes over the
/// tables the others are claiming right now and takes the next: n holds for n equally good
/// tables are one send each, not n rounds, and they take the smallest ids. On several threads,
/// as the server runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_of_one_instance_take_the_smallest_equal_tables_in_one_send_each() {
    let Some((plain, faulty, faults)) = stores("equal_tables_one_round").await else {
        return;
    };
    let ids: Vec<String> = (1..=20).map(|i| format!("t{i:02}")).collect();
    let mut r = serde_json::to_value(restaurant("Égaux")).unwrap();
    r["tables"] = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "label": id, "min_party": 1, "max_party": 2}))
        .collect();
    let mut r: tablecast::domain::Restaurant = serde_json::from_value(r).unwrap();
    r.validate().unwrap();
    plain
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let holds = (0..12).map(|_| {
        let (store, n) = (
            faulty.clone(),
            new(hold_at(&r, at(19, 0), 90), &names, 1, morning()),
        );
        tokio::spawn(async move { store.insert_reservation(n).await })
    });
    let mut got: Vec<String> = futures_util::future::join_all(holds)
        .await
        .into_iter()
        .map(|o| match o.unwrap().unwrap() {
            InsertOutcome::Won { reservation, .. } => reservation.table_id.to_string(),
            other => panic!("every hold has a table: {other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(got, ids[..12], "the twelve smallest ids, one hold each");
    assert_eq!(faults.calls(TX), 12, "one send each");
}

#[tokio::test]
async fn a_conflict_on_an_item_other_than_the_options_minutes_is_waited_out_on_the_same_option() {
    let Some((plain, faulty, faults)) = stores("conflict_off_the_cells").await else {
        return;
    };
    let r = created(&plain, "Patient").await;
    // Such a conflict says nothing about t1's minutes (a shared counter, check or slot item
    // in practice): the best fit stays the hold's to take.
    faults.inject(TX, Inject::ConflictOnFirst, 1);
    let (h, _) = won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1", "t2"], 1, morning()),
    )
    .await;
    assert_eq!(h.table_id, table("t1"));
    assert_eq!(faults.calls(TX), 2, "the conflict, then t1 sent again");
    exactly_one_hold(&plain, &r, h.id).await;
}

#[tokio::test]
async fn a_hold_whose_earlier_send_may_still_land_does_not_leave_for_another_option() {
    let Some((plain, faulty, faults)) = stores("unknown_then_conflict").await else {
        return;
    };
    let r = created(&plain, "Fidèle").await;
    // Its first send timed out (outcome unknown, not found), so the conflict its second send
    // meets may be that first send itself: it stays on t1, and wins it once.
    faults.inject(TX, Inject::TimeoutUnsent, 1);
    faults.inject(TX, Inject::Conflict, 1);
    let (h, _) = won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1", "t2"], 1, morning()),
    )
    .await;
    assert_eq!(h.table_id, table("t1"));
    assert_eq!(faults.calls(TX), 3, "timed out, conflict, then written");
    exactly_one_hold(&plain, &r, h.id).await;
}

#[tokio::test]
async fn a_confirm_whose_answer_was_lost_is_done_once() {
    let Some((plain, faulty, faults)) = stores("confirm_lost_answer").await else {
        return;
    };
    let r = created(&plain, "Confirmé").await;
    let (h, _) = won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    let before = plain.day(r.id, day()).await.unwrap().version;
    faults.inject(TX, Inject::CommitThen500, 1);
    let t = transition(h.id, Status::Held, Status::Confirmed, morning());
    match faulty.transition(t).await.unwrap() {
        TransitionOutcome::Done { reservation, .. } => {
            assert_eq!(reservation.status, Status::Confirmed)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(faults.calls(TX), 1, "read back as done: not sent twice");
    assert_eq!(plain.day(r.id, day()).await.unwrap().version, before + 1);
    let stored = plain.reservation(h.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.expires_at),
        (Status::Confirmed, None)
    );
}

#[tokio::test]
async fn an_expiry_whose_answer_was_lost_is_reported_by_exactly_one_sweeper() {
    let Some((plain, faulty, faults)) = stores("expiry_lost_answer").await else {
        return;
    };
    let r = created(&plain, "Balai").await;
    let (h, _) = won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    let sweep_at = h.expires_at.unwrap();
    faults.inject(TX, Inject::CommitThenTimeout, 1);
    let mine = faulty.expire_due(sweep_at, 10).await.unwrap();
    assert_eq!(mine.iter().map(|(x, _)| x.id).collect::<Vec<_>>(), [h.id]);
    assert!(plain.expire_due(sweep_at, 10).await.unwrap().is_empty());
    assert_eq!(
        plain.reservation(h.id).await.unwrap().unwrap().status,
        Status::Expired
    );
}

/// The `(pk, sk)` of every item of one `TransactWriteItems` body, with the kind of its action.
pub(crate) fn transaction_keys(body: &serde_json::Value) -> Vec<(String, (String, String))> {
    let key = |k: &serde_json::Value| {
        (
            k["pk"]["S"].as_str().unwrap().to_owned(),
            k["sk"]["S"].as_str().unwrap().to_owned(),
        )
    };
    body["TransactItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let (kind, action) = item.as_object().unwrap().iter().next().unwrap();
            let k = match kind.as_str() {
                "Put" => key(&action["Item"]),
                _ => key(&action["Key"]),
            };
            (kind.clone(), k)
        })
        .collect()
}

#[tokio::test]
async fn holds_of_different_clients_on_different_tables_share_no_item_they_write() {
    let Some((plain, faulty, faults)) = stores("no_shared_items").await else {
        return;
    };
    let r = created(&plain, "Chacun chez soi").await;
    let render: tablecast::store::RenderAnswer =
        Arc::new(|x: &tablecast::domain::Reservation| (201, x.id.to_string()));
    for (i, t) in ["t1", "t2", "t3"].iter().enumerate() {
        let key = format!("idem-{i}");
        assert_eq!(
            faulty.idem_begin(&key, "fp", morning()).await.unwrap(),
            IdemBegin::Fresh
        );
        let mut n = new(hold_at(&r, at(19, 0), 90), &[t], 1, morning());
        n.cap = Some(HoldCap {
            client: format!("client-{i}"),
            max: 4,
        });
        n.idem = Some(IdemRecord {
            key,
            render: render.clone(),
        });
        won(&faulty, n).await;
    }
    let sent = faults.transactions();
    assert_eq!(sent.len(), 3, "one transaction per hold");
    let mut owners: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    let mut checked = BTreeSet::new();
    for (i, body) in sent.iter().enumerate() {
        let keys = transaction_keys(body);
        assert!(
            keys.iter().any(|(_, (pk, _))| pk.starts_with("C#")),
            "claims a cap slot"
        );
        assert!(
            keys.iter().any(|(_, (pk, _))| pk.starts_with("I#")),
            "records its answer"
        );
        for (kind, k) in keys {
            if kind == "ConditionCheck" {
                checked.insert(k.clone());
            }
            owners.entry(k).or_default().insert(i);
        }
    }
    let shared: Vec<_> = owners
        .iter()
        .filter(|(_, by)| by.len() > 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(shared.is_empty(), "items shared by holds: {shared:?}");
    // Each hold checks only its own table's item (the settings revision and fence), never the
    // restaurant's.
    let tables: BTreeSet<_> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| (format!("O#{}#{t}", r.id), "T".to_owned()))
        .collect();
    assert_eq!(checked, tables);
}

#[tokio::test]
async fn a_capped_idempotent_hold_whose_answer_was_lost_takes_one_slot_and_records_once() {
    let Some((plain, faulty, faults)) = stores("capped_idem_lost_answer").await else {
        return;
    };
    let r = created(&plain, "Perdu de vue").await;
    let render: tablecast::store::RenderAnswer =
        Arc::new(|x: &tablecast::domain::Reservation| (201, x.id.to_string()));
    let cap = Some(HoldCap {
        client: "client-x".into(),
        max: 1,
    });
    assert_eq!(
        faulty.idem_begin("k", "fp", morning()).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut n = new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning());
    n.cap = cap.clone();
    n.idem = Some(IdemRecord {
        key: "k".into(),
        render,
    });
    faults.inject(TX, Inject::CommitThen500, 1);
    let (h, _) = won(&faulty, n).await;
    assert_eq!(faults.calls(TX), 1, "read back as won: not sent twice");
    assert_eq!(
        plain.idem_begin("k", "fp", morning()).await.unwrap(),
        IdemBegin::Replay {
            status: 201,
            body: h.id.to_string()
        }
    );
    let mut again = new(hold_at(&r, at(21, 0), 90), &["t2"], 1, morning());
    again.cap = cap;
    assert!(matches!(
        insert(&plain, again).await,
        InsertOutcome::OverCap
    ));
}

#[tokio::test]
async fn tables_a_committed_settings_change_left_fenced_are_settled_by_their_next_hold() {
    let Some((plain, faulty, faults)) = stores("left_fenced_after_commit").await else {
        return;
    };
    let r = created(&plain, "À moitié").await;
    let mut renamed = r.clone();
    renamed.name = "À moitié, bis".into();
    // The commit lands but its answer is lost; then every unfencing of a table is lost too.
    faults.inject(TX, Inject::CommitThenTimeout, 1);
    faults.inject(TX, Inject::TimeoutUnsent, 4 * 3);
    let out = faulty
        .replace_restaurant(&renamed, 1, tablecast::store::Guard::None, morning())
        .await
        .unwrap();
    assert!(
        matches!(out, tablecast::store::ReplaceOutcome::Done(_)),
        "{out:?}"
    );
    faults.clear();
    // Computed against the old settings: stale, even though the table was still fenced.
    let old = insert(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    assert!(matches!(old, InsertOutcome::Stale), "{old:?}");
    for t in ["t1", "t2", "t3"] {
        won(&plain, new(hold_at(&r, at(19, 0), 90), &[t], 2, morning())).await;
    }
}

#[tokio::test]
async fn a_settings_change_that_died_before_committing_holds_its_tables_only_until_its_fence_lapses(
) {
    let Some((plain, faulty, faults)) = stores("died_before_commit").await else {
        return;
    };
    let r = created(&plain, "Interrompu").await;
    let mut renamed = r.clone();
    renamed.name = "Interrompu, bis".into();
    faults.inject(TX, Inject::TimeoutUnsent, 4);
    let started = std::time::Instant::now();
    let err = faulty
        .replace_restaurant(&renamed, 1, tablecast::store::Guard::None, morning())
        .await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    faults.clear();
    // Fenced meanwhile: a hold is stale (the booking layer retries it) until the change's fence
    // lapses, 5 s after it was taken. Then the next hold settles its table at revision 1, and
    // the change, were it still in flight, could no longer commit.
    let mut stale = 0;
    let lapsed = loop {
        match insert(
            &plain,
            new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
        )
        .await
        {
            InsertOutcome::Stale => {
                stale += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the fence never lapsed"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            InsertOutcome::Won { .. } => break started.elapsed(),
            other => panic!("{other:?}"),
        }
    };
    assert!(stale > 0, "the first hold met the fence");
    assert!(
        lapsed >= Duration::from_millis(4_900),
        "the fence held only {lapsed:?}"
    );
    assert_eq!(plain.restaurant(r.id).await.unwrap().unwrap().revision, 1);
    let again = plain
        .replace_restaurant(&renamed, 1, tablecast::store::Guard::None, morning())
        .await
        .unwrap();
    assert!(
        matches!(again, tablecast::store::ReplaceOutcome::Done(_)),
        "{again:?}"
    );
    won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t2"], 2, morning()),
    )
    .await;
}

#[tokio::test]
async fn ttl_removes_a_hold_only_a_day_after_the_retention_has_passed_since_its_expiry() {
    for (days, want) in [(None, 31), (Some(90), 91), (Some(1), 2)] {
        let Some((plain, faulty, faults)) = stores_keeping("ttl_after_retention", days).await
        else {
            return;
        };
        let r = created(&plain, "Rétention").await;
        let (h, _) = won(
            &faulty,
            new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
        )
        .await;
        let expected = h.expires_at.unwrap().timestamp() + want * 86_400;
        // Every item the hold's transaction wrote with a TTL (its reservation, pointer, token)
        // carries the same one.
        let sent = faults.transactions();
        let ttls: BTreeSet<i64> = sent
            .iter()
            .flat_map(|t| t["TransactItems"].as_array().unwrap().iter())
            .filter_map(|i| i["Put"]["Item"]["ttl_s"]["N"].as_str())
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(ttls, BTreeSet::from([expected]), "{days:?}: {sent:?}");
    }
}

/// A client whose bucket item DynamoDB throttles (its requests come that fast) is refused for
/// a second, not let through as if the store had failed.
#[tokio::test]
async fn a_throttled_rate_bucket_refuses_for_a_second() {
    let Some((_plain, faulty, faults)) = stores("throttled_rate_bucket").await else {
        return;
    };
    let bucket = tablecast::store::rate::Bucket {
        every_us: 2_000_000,
        burst: 30,
    };
    faults.inject("UpdateItem", Inject::Throttle, 1000);
    let wait = faulty
        .take_rate_token("flood", bucket, morning())
        .await
        .unwrap();
    assert_eq!(wait, Some(1_000_000));
    faults.clear();
    assert_eq!(
        faulty
            .take_rate_token("flood", bucket, morning())
            .await
            .unwrap(),
        None
    );
}

/// A bucket DynamoDB gives no answer for is the store's failure, not the client's flood: the
/// take fails (and the limits let the request through, counted), it does not refuse for a second.
#[tokio::test]
async fn a_rate_bucket_dynamodb_gives_no_answer_for_is_a_store_failure_not_a_refusal() {
    let Some((plain, faulty, faults)) = stores("unanswered_rate_bucket").await else {
        return;
    };
    let bucket = tablecast::store::rate::Bucket {
        every_us: 60_000_000,
        burst: 1,
    };
    // The one token is taken, so the next take's updates fail their conditions and it reads.
    assert_eq!(
        plain
            .take_rate_token("quiet", bucket, morning())
            .await
            .unwrap(),
        None
    );
    faults.inject("GetItem", Inject::CommitThen500, 1000);
    let taken = faulty.take_rate_token("quiet", bucket, morning()).await;
    assert!(
        matches!(&taken, Err(tablecast::store::StoreError::Unavailable(c)) if c.context() != tablecast::store::dynamo::errors::THROTTLED),
        "{taken:?}"
    );
    faults.clear();
    // Read again, the bucket is empty: the client waits its interval.
    let wait = faulty
        .take_rate_token("quiet", bucket, morning())
        .await
        .unwrap();
    assert_eq!(wait, Some(60_000_000));
}

/// What `read` (on the faulty store) gives when the first `op` request it sends that contains
/// `has` and not `lacks` is held back while hold `id` is released on the plain store.
async fn read_across_a_release<T: Send + 'static>(
    plain: &DynStore,
    faults: &Faults,
    id: uuid::Uuid,
    (op, has, lacks): (&str, &str, Option<&str>),
    read: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let gate = Gate::new();
    faults.inject_where(op, Some(has), lacks, Inject::Gated(gate.clone()), 1);
    let read = tokio::spawn(read);
    gate.arrived().await;
    let released = transition(id, Status::Held, Status::Released, morning());
    assert!(matches!(
        plain.transition(released).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    gate.open();
    read.await.unwrap()
}

/// A hold released between the two reads of a lookup (its pointer, then the record it points
/// to) is found where it moved: the lookup answered "not found" for a reservation that exists
/// (a `404` to a GET, a confirm or a second DELETE of a hold at its expiry).
#[tokio::test]
async fn a_reservation_moved_between_its_pointer_and_its_record_is_still_found() {
    let Some((plain, faulty, faults)) = stores("lookup_moved").await else {
        return;
    };
    let r = created(&plain, "Déplacé").await;
    let (h, _) = won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    // The record's read, not the pointer's (`X#…`).
    let record = format!("R#{}", h.id);
    let got = read_across_a_release(
        &plain,
        &faults,
        h.id,
        ("GetItem", &record, Some("X#")),
        async move { faulty.reservation(h.id).await },
    )
    .await
    .unwrap();
    assert_eq!(got.map(|g| g.status), Some(Status::Released));
}

/// The staff list reads a date's live records, then its dead ones: a hold released while either
/// read is held back is listed once, released. Read in parallel, a hold released while the live
/// read was held back was missing, and one released while the dead read was held back was
/// listed twice (held and released).
#[tokio::test]
async fn a_hold_released_while_the_staff_list_is_read_is_listed_exactly_once() {
    let Some((plain, faulty, faults)) = stores("list_moved").await else {
        return;
    };
    let r = created(&plain, "Liste").await;
    let live = format!("D#{}#R#", day());
    let dead = format!("E#{}#R#", day());
    for (table, held_back) in [("t1", &live), ("t2", &dead)] {
        let (h, _) = won(
            &plain,
            new(hold_at(&r, at(19, 0), 90), &[table], 1, morning()),
        )
        .await;
        let (faulty, rid) = (faulty.clone(), r.id);
        let listed: Vec<Status> = read_across_a_release(
            &plain,
            &faults,
            h.id,
            ("Query", held_back, None),
            async move { faulty.reservations_on(rid, day()).await },
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.id == h.id)
        .map(|x| x.status)
        .collect();
        assert_eq!(
            listed,
            [Status::Released],
            "{table}, released while the read of {held_back} was held back"
        );
    }
}

/// Availability of a date with no bookable start (here a past one) reads the date's version
/// and none of its reservations: with every read of the date's range failing, it still answers
/// no slots, at the version a day read gives. A future date's answer does read that range.
#[tokio::test]
async fn availability_of_a_past_date_reads_its_version_and_none_of_its_reservations() {
    use chrono::TimeZone;
    let Some((plain, faulty, faults)) = stores("past_date").await else {
        return;
    };
    let r = created(&plain, "Passé").await;
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).date_naive();
    let start = chrono::Utc.from_utc_datetime(&three_days_ago.and_hms_opt(19, 0, 0).unwrap());
    let then = start - chrono::Duration::hours(1);
    let seated = reservation(&r, start, 90, 2, Status::Seated, then);
    let date = seated.date;
    won(&plain, new(seated, &["t1"], 1, then)).await;
    let expected = plain.day(r.id, date).await.unwrap().version;
    assert_eq!(expected, WIDE_STEP + 1, "the seating counted");

    let booking = booking(&faulty);
    let two = tablecast::domain::PartySize::new(2).unwrap();
    let range = |d: tablecast::domain::LocalDate| format!("D#{d}#~");
    faults.inject_where("Query", Some(&range(date)), None, Inject::Throttle, 1000);
    let a = booking.availability(r.id, date, two).await.unwrap();
    assert!(a.slots.is_empty());
    assert_eq!(a.version, expected);
    let soon = tablecast::domain::LocalDate::from_naive(
        (chrono::Utc::now() + chrono::Duration::days(10)).date_naive(),
    );
    faults.inject_where("Query", Some(&range(soon)), None, Inject::Throttle, 1000);
    assert!(
        booking.availability(r.id, soon, two).await.is_err(),
        "a date with starts reads its reservations (the injected fault reaches it)"
    );
}

#[tokio::test]
async fn a_key_whose_first_marker_landed_unanswered_and_read_back_late_is_still_fresh() {
    let Some((plain, faulty, faults)) = stores("idem_marker_read_late").await else {
        return;
    };
    // The marker commits but its answer is lost; the read after it comes before the write is
    // seen; the marker is sent again and meets itself. It is this request's own: fresh, not a
    // request in flight (which answered `409 conflict` and kept the key for a minute).
    faults.inject("PutItem", Inject::CommitThenTimeout, 1);
    faults.inject("GetItem", Inject::StaleRead, 1);
    assert_eq!(
        faulty.idem_begin("k", "fp", morning()).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(faults.calls("PutItem"), 2, "the marker was sent again");
    assert_eq!(
        plain.idem_begin("k", "fp", morning()).await.unwrap(),
        IdemBegin::InFlight,
        "another request under the key is still kept out"
    );
}
