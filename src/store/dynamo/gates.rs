//! One paced decision per window at a time within an instance.
//!
//! A window item admits one write per version, so holds of one instance racing into the same
//! window only cancel one another's transactions (DynamoDB reports a conflict to both, and a
//! slow emulator or a busy machine turns that into a storm). They queue here instead, each
//! deciding on a fresh read; instances still race one another through the item's version, and
//! those few conflicts are settled by the hold's back-off. Only a speed-up: correctness never
//! depends on it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{Mutex as Gate, OwnedMutexGuard};

#[derive(Debug, Default)]
pub struct Gates(Mutex<HashMap<String, Weak<Gate<()>>>>);

impl Gates {
    /// Waits for the window `key`'s turn; the turn ends when the guard drops.
    pub async fn enter(&self, key: String) -> OwnedMutexGuard<()> {
        let gate = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&key).and_then(Weak::upgrade) {
                Some(g) => g,
                None => {
                    // Forget the windows nobody waits for any more.
                    map.retain(|_, w| w.strong_count() > 0);
                    let g = Arc::new(Gate::new(()));
                    map.insert(key, Arc::downgrade(&g));
                    g
                }
            }
        };
        gate.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_per_window_and_forgotten_windows_are_dropped() {
        let gates = Gates::default();
        let a = gates.enter("w1".into()).await;
        // Another window is not held up.
        let b = gates.enter("w2".into()).await;
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            gates.enter("w1".into()),
        )
        .await;
        assert!(waiting.is_err(), "w1 is still taken");
        drop((a, b));
        let _again = gates.enter("w1".into()).await;
        let _third = gates.enter("w3".into()).await;
        assert_eq!(gates.0.lock().unwrap().len(), 2, "w2 was forgotten");
    }
}
