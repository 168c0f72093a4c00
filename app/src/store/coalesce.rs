//! Point reads by key, coalesced. Callers that ask at about the same time share one statement
//! `… WHERE key IN (…)` instead of running one each: the SMS gateway handles a batch of
//! commands at once, most of them the balance query, and on SQLite every statement is a trip
//! to the connection's thread and back — those trips were most of the gateway's work.
//!
//! The first caller of a round starts it in a task of its own, which first lets the runtime
//! run the other callers that are ready, so that they join; whoever asks while a round is in
//! flight is in the next one. A round starts after each of its callers asked, so a caller
//! reads what it wrote before asking. Each caller gets its own key's value, or `None`.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::{Error, Result};

type Waiter<V> = (String, oneshot::Sender<Result<Option<V>>>);

pub(crate) struct Coalescer<V> {
    waiting: Mutex<Vec<Waiter<V>>>,
}

impl<V> Default for Coalescer<V> {
    fn default() -> Self {
        Coalescer {
            waiting: Mutex::new(Vec::new()),
        }
    }
}

/// Most keys in one statement of a round (a bigger round runs several).
pub(crate) const MOST_KEYS: usize = 512;

impl<V: Clone + Send + 'static> Coalescer<V> {
    /// `key`'s value as `fetch` finds it, in a round with whoever else asks meanwhile.
    /// `fetch` gets at most [`MOST_KEYS`] distinct keys at a time (padded by [`padded`] if it
    /// wants a few statement shapes only) and returns the values it found by key.
    pub(crate) async fn get<F, Fut>(self: &Arc<Self>, key: String, fetch: F) -> Result<Option<V>>
    where
        F: Fn(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, V>>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().expect("coalescer lock");
            waiting.push((key, tx));
            waiting.len() == 1
        };
        if first {
            // A task of its own: the round must run even if this caller stops waiting.
            tokio::spawn(self.clone().round(fetch));
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::Storage("a coalesced read was abandoned".into())))
    }

    async fn round<F, Fut>(self: Arc<Self>, fetch: F)
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = Result<HashMap<String, V>>>,
    {
        tokio::task::yield_now().await;
        let waiters = std::mem::take(&mut *self.waiting.lock().expect("coalescer lock"));
        let mut keys: Vec<String> = waiters.iter().map(|(k, _)| k.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut found = HashMap::with_capacity(keys.len());
        let mut failed = None;
        for chunk in keys.chunks(MOST_KEYS) {
            match fetch(chunk.to_vec()).await {
                Ok(values) => found.extend(values),
                Err(e) => {
                    failed = Some(e.operator_detail());
                    break;
                }
            }
        }
        for (key, tx) in waiters {
            let _ = tx.send(match &failed {
                None => Ok(found.get(&key).cloned()),
                Some(detail) => Err(Error::Storage(detail.clone())),
            });
        }
    }
}

/// `keys` padded to the next power of two by repeating the first, so that a statement with one
/// parameter a key comes in a few shapes only (each shape is prepared once per connection).
pub(crate) fn padded(mut keys: Vec<String>) -> Vec<String> {
    if let Some(first) = keys.first().cloned() {
        keys.resize(keys.len().next_power_of_two(), first);
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn keys_are_padded_to_a_power_of_two() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(padded(k(&["a", "b", "c"])), k(&["a", "b", "c", "a"]));
        assert_eq!(padded(k(&["a"])), k(&["a"]));
        assert!(padded(Vec::new()).is_empty());
    }

    /// Callers asking together share rounds (far fewer than callers), each gets its own key's
    /// value or None, and a failed round fails its callers only.
    #[tokio::test]
    async fn callers_asking_together_share_a_round() {
        let c: Arc<Coalescer<usize>> = Arc::default();
        let rounds = Arc::new(AtomicUsize::new(0));
        let fetch = {
            let rounds = rounds.clone();
            move |keys: Vec<String>| {
                rounds.fetch_add(1, Ordering::SeqCst);
                async move {
                    if keys.iter().any(|k| k == "boom") {
                        return Err(Error::Storage("boom".into()));
                    }
                    Ok(keys
                        .into_iter()
                        .filter(|k| k != "missing")
                        .map(|k| (k.clone(), k.len()))
                        .collect())
                }
            }
        };
        let asks = (0..200).map(|i| {
            let (c, fetch) = (c.clone(), fetch.clone());
            async move {
                let key = if i % 50 == 0 {
                    "missing".to_owned()
                } else {
                    "x".repeat(i % 7 + 1)
                };
                (key.clone(), c.get(key, fetch).await.unwrap())
            }
        });
        for (key, value) in futures::future::join_all(asks).await {
            let expected = (key != "missing").then_some(key.len());
            assert_eq!(value, expected, "{key}");
        }
        let n = rounds.load(Ordering::SeqCst);
        assert!(n <= 2, "200 callers took {n} rounds");

        let failing = c.get("boom".into(), fetch.clone());
        assert!(matches!(failing.await, Err(Error::Storage(d)) if d == "boom"));
        assert_eq!(c.get("ok".into(), fetch).await.unwrap(), Some(2));
    }
}
