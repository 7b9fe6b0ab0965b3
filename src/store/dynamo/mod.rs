//! The DynamoDB store: one table shared by any number of instances, every race decided by a
//! conditional write.
//!
//! # Key design
//!
//! One table, string keys `pk`/`sk`, on-demand capacity, TTL on `ttl_s`, and two sparse indexes
//! (`due` for the sweeper, `retention` for retention). Why dead holds live apart, how the
//! live-hold cap is kept and how retention finds its work: see [`keys`].
//!
//! | item | `pk` | `sk` | holds |
//! |---|---|---|---|
//! | restaurant | `R#{rid}` | `META` | settings document, `rev`, `wide`, a settings-change fence; never in a hold |
//! | reservation | `R#{rid}` | `D#{date}#R#{id}` | the reservation, its write count `wc`, stamp `tx` |
//! | dead hold | `R#{rid}` | `E#{date}#R#{id}` | a released or expired hold, out of the day's range |
//! | cancelled reservation | `R#{rid}` | `CX#{date}#R#{id}` | out of the day's range; the floor and the staff list read it |
//! | client slots | `C#{client}` | `C` | `s0…` the client's live holds, for its cap |
//! | pacing window | `P#{rid}` | `{date}#{start}#{end}` | version `v`, entries `h{id}` not yet in the day's read, lapse marks `x{id}` (see [`pacing`]) |
//! | change counter | `R#{rid}` | `D#{date}#C#{table}` | `n` changes of one table that date, `nx` of them past midnight |
//! | occupancy cell | `O#{rid}#{table}` | 15-minute cell number | one attribute per claimed minute |
//! | table | `O#{rid}#{table}` | `T` | the settings `rev` its holds must be computed against, a settings-change `fence` |
//! | pointer | `X#{id}` | `X` | restaurant and date of a reservation id, whether it is dead or cancelled |
//! | link record | `X#{id}` | `K#{sha256}` | a mailed link token of the reservation, found and deleted with it by the purge |
//! | token | `K#{sha256}` | `K` | staff or reservation owner |
//! | idempotency | `I#{scope}` | `I` | fingerprint, state, first answer (TTL 24 h) |
//! | directory | `RESTAURANTS` | `{created_ms}#{rid}` | id, name, timezone for the listing |
//! | outbox mail | `M#{id}` | `M` | kind, recipient, the decided reservation, state, attempts (see [`outbox`]) |
//! | waitlist entry | `W#{rid}` | `{date}#{id}` | the entry, its offer, write count `wc` (see `waitlist.rs`) |
//! | entry pointer · token | `WX#{id}` · `WK#{sha256}` | `X` · `K` | restaurant, date and id of an entry |
//! | waitlist day | `WAITLIST` | `{date}#{rid}` | joins `j`, `idle` mark: the reconcile loop's and retention's list |
//! | waitlist counter | `R#{rid}` | `D#{date}#C#~wl` | `n` joins and leaves of the date, in its version |
//!
//! - **Reads.** A restaurant/date is one strongly consistent `Query` on `R#{rid}` over
//!   `D#{date-1}#` … `D#{date}#~`: the reservations of the date and of the day before (which may
//!   run past midnight) and the date's change counters, plus a `GetItem` of the restaurant item
//!   (the restaurant-wide version) in parallel. The listing queries the `RESTAURANTS` partition;
//!   the sweeper queries the sparse `due` index (`due_pk` = one of 4 shards, `due_at` = expiry),
//!   which only held reservations carry. Nothing on a request path scans, and the day's range
//!   holds no released or expired hold and no cancelled reservation: those are moved to `E#…`
//!   and `CX#…` as they leave it.
//! - **No overlap, by condition.** A table's time is cut into 15-minute UTC cells; a cell holds
//!   one attribute per occupied minute whose value is `{expiry:016}{owner}` (see [`cells`]).
//!   Claiming a minute requires it to be absent or expired (`value < "{now:016}~"`), so expired
//!   holds are free by condition, never by waiting for TTL, and of two claims on one minute
//!   exactly one commits. Minute granularity keeps arbitrary `[start, end)` exact (walk-ins start
//!   at any minute, `completed`/`no_show` shorten `end` and free the tail) with no false
//!   conflicts, while a cell item keeps each write small: a 12-hour reservation touches at most
//!   49 cells. A per-table-per-date item with a version would make two holds on one table at
//!   different times contend and retry; per-minute items would need up to 720 items per write.
//!   The decision's unit is one table over one quarter hour: claims for other tables or other
//!   times never write the same cell, and a loser's condition fails at once — a hold never waits
//!   on another hold. (Besides its cells a change writes its table's change counter for the
//!   date and checks its table's own item; on DynamoDB itself those items, shared only by holds
//!   of one table, can only cause a retried `TransactionConflict`, never a wrong answer. Counters per table and date rather than
//!   per cell keep the day's `Query` small, which every availability read pays for.)
//! - **One transaction per decision.** A hold is one `TransactWriteItems` (≤ 57 items of the 100
//!   allowed on one table): the reservation and its pointer and token (`attribute_not_exists`),
//!   the counter, a `ConditionCheck` of each member table's settings revision and fence
//!   (`Stale`), the cell claims of every member table (a combination is claimed whole or not at
//!   all; one whose cells would pass 100 items is never claimed), and, when capped, idempotent or
//!   paced, the client's slot, the request's answer and the window item written on the version
//!   it read ([`pacing`]).
//!   Candidate tables are tried in best-fit order, skipping those the day view shows
//!   taken; the cancellation reasons, in item order, tell a lost table from a stale one.
//!   Transitions are conditional on the status, the write count read (and for a hold, on not
//!   being expired) and re-tag or free exactly the minutes that still carry the owner's value.
//!   On DynamoDB itself a transaction is also refused (`TransactionConflict`) while another one
//!   holds any of its items — holds of one table share its item and change counter — so
//!   conflicts are retried with jitter; but a hold that meets one first reads its table's
//!   cells, and if another live claim has one of its minutes it answers `Lost` at once instead
//!   of after the retries.
//! - **Versions.** A date's version is `wide × 10⁹ + Σ n` over the date's change counters: every
//!   committed change adds 1 to the counter of its table and date in the same transaction, and a
//!   restaurant-wide change adds 1 to `wide`, which raises every date at once without touching
//!   them. Summing per-table counters keeps holds on different tables from contending on one
//!   version item. Each counter names the reservation it last changed and that item's write
//!   count, so a `Query` that saw a counter but not (yet) its transaction's reservation write is
//!   detected and read again. A change to a reservation that may run past midnight
//!   (`Reservation::dates_spanned`) also adds 1 to `nx` of the same counter, and a date's
//!   version adds `Σ nx` of the day before's counters: the next date's version rises in the same
//!   transaction with no extra item, and the next date's `Query`, which covers the day before,
//!   checks that counter against its reservation as the own date's does. (A counter item of the
//!   next date naming the reservation would look torn to the `Query` of the date after, which
//!   covers that counter but not the reservation.)
//! - **TTL** only on holds, their pointers and tokens (7 days after `expires_at`; removed on
//!   confirm), on idempotency records (24 h) and on occupancy cells a week after their time has
//!   passed. A confirmed booking never carries one.
//! - **Unknown outcomes.** The SDK's retries are off; throttling and transaction conflicts are
//!   retried with bounded jittered back-off ([`errors`]). A write whose outcome is unknown is
//!   resolved by reading back the reservation (does it exist, does it carry our stamp) and, if
//!   it did not land, by sending the very same write again: the reservation id and stamp make a
//!   second hold impossible and a win is never answered as a loss.
//! - **Expiry.** The sweeper queries the due index and marks each hold `expired` with a write
//!   conditional on `status = held AND exp_ms <= now` and its write count: exactly one instance
//!   wins each hold and publishes it.
//! - **Settings changes** share no item with holds of other tables: two holds on different
//!   tables by different clients share none at all. A change fences the restaurant item (changes
//!   exclude each other), then every table's own item; when guarded (delete or shrink a table,
//!   change the timezone) it reads the future reservations; it commits the restaurant item on its
//!   fence and unfences every table at the new revision, or lifts the fences. A table left
//!   fenced by a change that stopped is settled by its next hold (see [`fence`]).
pub mod cells;
mod claim;
mod claiming;
pub mod errors;
mod fence;
mod gates;
mod insert;
mod io;
pub mod items;
pub mod keys;
mod outbox;
pub mod pacing;
mod purge;
mod rate;
mod reads;
mod restaurants;
pub mod schema;
mod sessions;
mod transition;
mod wait_items;
mod wait_join;
mod wait_purge;
mod waitlist;

use super::*;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use std::time::Duration;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Queues this instance's paced holds window by window (see `gates`).
    gates: gates::Gates,
    /// The tables this instance's holds are writing (see `claiming`).
    claiming: claiming::Claiming,
    /// Seconds after its expiry at which TTL may remove a hold (`items::HOLD_TTL_AFTER_S`).
    dead_ttl_s: i64,
}

impl DynamoStore {
    /// A conditional `UpdateItem` of one item, its names and values from one expression set.
    fn conditional_update(
        &self,
        item: keys::Item,
        update: &str,
        condition: &str,
        e: &keys::Expr,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
    }

    /// Connects with region, credentials and endpoint from the standard AWS environment
    /// (`AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local) and creates the table when missing.
    pub async fn connect(table: &str) -> anyhow::Result<Self> {
        schema::check_name(table)?;
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        if sdk.region().is_none() {
            return Err(crate::setting::bad(
                "no AWS region configured for the DynamoDB store (set AWS_REGION)",
            ));
        }
        let client = Client::from_conf(Self::client_config(&sdk).build());
        Self::with_client(client, table).await
    }

    /// The client settings the store relies on: no SDK retries (the store retries only what is
    /// safe to retry), bounded connect and attempt timeouts.
    pub fn client_config(sdk: &SdkConfig) -> aws_sdk_dynamodb::config::Builder {
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
    }

    /// Uses a client built elsewhere (tests inject faults this way); creates the table if missing.
    pub async fn with_client(client: Client, table: &str) -> anyhow::Result<Self> {
        schema::ensure_table(&client, table).await?;
        Ok(Self {
            client,
            table: table.to_owned(),
            gates: gates::Gates::default(),
            claiming: claiming::Claiming::default(),
            dead_ttl_s: items::HOLD_TTL_AFTER_S,
        })
    }

    /// Lets TTL remove released and expired holds (with their pointers and tokens) only a day
    /// after `--retention-days` have passed since they expired: retention decides, TTL is the
    /// safety net behind it.
    pub fn keep_dead_for(mut self, retention_days: u32) -> Self {
        self.dead_ttl_s = (i64::from(retention_days) + 1) * 86_400;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.get(keys::token_key("ping")).await.map(|_| ())
    }

    async fn take_rate_token(
        &self,
        client: &str,
        bucket: crate::store::rate::Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        self.take_rate_token_(client, bucket, now).await
    }

    /// One transaction holds at most 100 items: see [`claim::longest_claim_minutes`].
    fn longest_claim_minutes(&self, tables: usize) -> Option<u32> {
        Some(claim::longest_claim_minutes(tables))
    }

    async fn create_restaurant(
        &self,
        r: &Restaurant,
        staff_token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.create_restaurant_(r, staff_token_hash, now).await
    }

    async fn list_restaurants(&self) -> StoreResult<Vec<RestaurantSummary>> {
        self.list_restaurants_().await
    }

    async fn restaurant(&self, id: Uuid) -> StoreResult<Option<StoredRestaurant>> {
        Ok(self.restaurant_item(id).await?.map(|r| r.stored))
    }

    async fn replace_restaurant(
        &self,
        r: &Restaurant,
        expected_revision: u64,
        guard: Guard,
        now: DateTime<Utc>,
    ) -> StoreResult<ReplaceOutcome> {
        self.replace_restaurant_(r, expected_revision, guard, now)
            .await
    }

    async fn day(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<Arc<DayView>> {
        self.day_(restaurant_id, date).await.map(Arc::new)
    }

    async fn day_version(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<u64> {
        self.day_version_(restaurant_id, date).await
    }

    async fn cancelled_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        self.cancelled_on_(restaurant_id, date).await
    }

    async fn reservations_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        self.reservations_on_(restaurant_id, date).await
    }

    async fn reservation(&self, id: Uuid) -> StoreResult<Option<Reservation>> {
        Ok(self.stored_reservation(id).await?.map(|r| r.reservation))
    }

    async fn insert_reservation(&self, new: NewReservation) -> StoreResult<InsertOutcome> {
        self.insert_(new).await
    }

    async fn transition(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        self.transition_(t).await
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>> {
        self.expire_due_(now, limit).await
    }

    async fn token_owner(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        self.token_owner_(hash).await
    }

    async fn idem_begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin> {
        self.idem_begin_(key, fingerprint, now).await
    }

    async fn idem_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        self.idem_finish_(key, status, body).await
    }

    async fn idem_abort(&self, key: &str) -> StoreResult<()> {
        self.idem_abort_(key).await
    }

    async fn purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        self.purge_(before, limit).await
    }

    async fn join_waitlist(&self, new: NewEntry) -> StoreResult<JoinOutcome> {
        self.join_waitlist_(new).await
    }

    async fn waitlist_entry(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>> {
        self.waitlist_entry_(id).await
    }

    async fn waitlist_entry_by_token(&self, hash: &str) -> StoreResult<Option<WaitlistEntry>> {
        self.waitlist_entry_by_token_(hash).await
    }

    async fn waitlist_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>> {
        self.waitlist_on_(restaurant_id, date).await
    }

    async fn waiting_days(&self, from: LocalDate, limit: u32) -> StoreResult<Vec<WaitingDay>> {
        self.waiting_days_(from, limit).await
    }

    async fn offer(&self, o: NewOffer) -> StoreResult<OfferOutcome> {
        self.offer_(o).await
    }

    async fn transition_offering(
        &self,
        t: Transition,
        o: NewOffer,
    ) -> StoreResult<(TransitionOutcome, Option<OfferOutcome>)> {
        self.transition_offering_(t, o).await
    }

    async fn leave_waitlist(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<LeaveOutcome> {
        self.leave_waitlist_(id, now).await
    }

    async fn leave_waitlist_offering(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        o: NewOffer,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        self.leave_waitlist_offering_(id, now, o).await
    }
}
