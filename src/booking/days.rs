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
            return Ok(Arc::new(store.day(restaurant_id, date).await?));
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
            .get_or_try_init(|| async { store.day(restaurant_id, date).await.map(Arc::new) })
            .await?;
        Ok(day.clone())
    }
}
