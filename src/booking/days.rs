//! The day views refused holds compute their alternatives from, shared between the losers of
//! one version. A stampede's losers are refused from the same committed state: when the store
//! says which version of the date it refused from, the first loser reads the day and every
//! other loser of that version (or an older one) computes its alternatives from that read,
//! instead of queueing one more read each. The read is never older than the refusal's
//! snapshot, as a read of its own would be; availability is still computed at each loser's
//! `now`, so holds that lapsed since are free in its answer.
use crate::domain::LocalDate;
use crate::store::{DayView, DynStore, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Past this many restaurant dates the cache starts over (each entry is one day's view).
const MAX_ENTRIES: usize = 1024;

/// Per restaurant and date: the newest version a loser was refused at, and its day read (one
/// read at a time: the losers of that version wait for the first one's).
#[derive(Clone, Default)]
pub(super) struct LoserDays(Arc<Mutex<HashMap<(Uuid, LocalDate), Entry>>>);

type Entry = (u64, Arc<OnceCell<Arc<DayView>>>);

impl LoserDays {
    /// A day view of `date` at least as new as version `seen` (a fresh read without `seen`).
    pub(super) async fn day(
        &self,
        store: &DynStore,
        restaurant_id: Uuid,
        date: LocalDate,
        seen: Option<u64>,
    ) -> StoreResult<Arc<DayView>> {
        let Some(seen) = seen else {
            return store.day(restaurant_id, date).await;
        };
        let cell = {
            let mut all = self.0.lock().expect("loser days");
            match all.get(&(restaurant_id, date)) {
                // Read at this version or a newer one (a read is never older than its version).
                Some((v, cell)) if *v >= seen => cell.clone(),
                _ => {
                    if all.len() >= MAX_ENTRIES {
                        all.clear();
                    }
                    let cell = Arc::new(OnceCell::new());
                    all.insert((restaurant_id, date), (seen, cell.clone()));
                    cell
                }
            }
        };
        // A failed read leaves the cell empty: the next loser reads again.
        let day = cell
            .get_or_try_init(|| store.day(restaurant_id, date))
            .await?;
        Ok(day.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::{Booking, Change, HoldRequest, Publish};
    use crate::domain::restaurant::tests::paris;
    use crate::metrics::Metrics;

    struct Nobody;
    impl Publish for Nobody {
        fn publish(&self, _: Change) {}
    }

    async fn hold(b: &Booking, rid: Uuid, date: LocalDate, table: &str) {
        b.hold(HoldRequest::two_at_seven(rid, date, table))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn losers_of_one_version_share_a_read_and_a_newer_version_reads_again() {
        let store: DynStore = Arc::new(
            crate::store::sqlite::SqliteStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let b = Booking::new(store.clone(), Arc::new(Nobody), Metrics::new());
        let mut three = paris();
        let mut t3 = three.tables[0].clone();
        t3.id = crate::domain::TableId::parse("t3").unwrap();
        t3.label = "T3".into();
        three.tables.push(t3);
        let (r, _) = b.create_restaurant(three).await.unwrap();
        let date = LocalDate::from_naive(chrono::Utc::now().date_naive() + chrono::Days::new(3));
        let tables = r
            .tables
            .iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>();
        hold(&b, r.id, date, &tables[0]).await;
        let v1 = store.day(r.id, date).await.unwrap().version;
        let days = LoserDays::default();
        let first = days.day(&store, r.id, date, Some(v1)).await.unwrap();
        assert_eq!((first.version, first.reservations.len()), (v1, 1));

        // Another hold commits; a loser refused at v1 (or older) shares the first read.
        hold(&b, r.id, date, &tables[1]).await;
        let shared = days.day(&store, r.id, date, Some(v1)).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &shared),
            "the losers of v1 share one read"
        );
        let older = days.day(&store, r.id, date, Some(v1 - 1)).await.unwrap();
        assert!(Arc::ptr_eq(&first, &older));

        // A loser refused at the newer version never gets the older read.
        let v2 = store.day(r.id, date).await.unwrap().version;
        assert!(v2 > v1);
        let newer = days.day(&store, r.id, date, Some(v2)).await.unwrap();
        assert_eq!((newer.version, newer.reservations.len()), (v2, 2));
        // Without a version, always a read of the store, never a loser's shared read.
        hold(&b, r.id, date, &tables[2]).await;
        let own = days.day(&store, r.id, date, None).await.unwrap();
        assert!(own.version > v2);
        assert_eq!(own.reservations.len(), 3);
        let still = days.day(&store, r.id, date, Some(v2)).await.unwrap();
        assert!(Arc::ptr_eq(&still, &newer));
    }
}
