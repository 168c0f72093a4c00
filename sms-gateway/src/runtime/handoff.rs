//! Work handed from the writer straight to the loop that does it (MO claimed as they are
//! stored → the worker; replies claimed as they are queued → the drainer), so that neither
//! claims it again from the database. The writer hands over only while the taker keeps up
//! ([`Handoff::has_room`]); otherwise the work waits in the database like any other.
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// The writer's end.
pub(crate) struct Handoff<T> {
    tx: mpsc::UnboundedSender<Vec<T>>,
    waiting: Arc<AtomicUsize>,
}

/// The taker's end.
pub(crate) struct Handed<T> {
    rx: mpsc::UnboundedReceiver<Vec<T>>,
    waiting: Arc<AtomicUsize>,
}

pub(crate) fn handoff<T>() -> (Handoff<T>, Handed<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    (
        Handoff {
            tx,
            waiting: waiting.clone(),
        },
        Handed { rx, waiting },
    )
}

impl<T> Handoff<T> {
    /// Whether the taker is there and has fewer than `limit` items waiting.
    pub fn has_room(&self, limit: usize) -> bool {
        !self.tx.is_closed() && self.waiting.load(Ordering::Relaxed) < limit
    }

    /// Whether the taker has stopped taking.
    pub fn taker_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Hands a batch over; gives it back when the taker has gone.
    pub fn send(&self, batch: Vec<T>) -> Result<(), Vec<T>> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        self.waiting.fetch_add(n, Ordering::Relaxed);
        self.tx.send(batch).map_err(|e| {
            self.waiting.fetch_sub(n, Ordering::Relaxed);
            e.0
        })
    }
}

impl<T> Handed<T> {
    fn took(&self, batch: Option<Vec<T>>) -> Option<Vec<T>> {
        if let Some(b) = &batch {
            self.waiting.fetch_sub(b.len(), Ordering::Relaxed);
        }
        batch
    }

    /// The next batch if one is waiting.
    pub fn try_next(&mut self) -> Option<Vec<T>> {
        let b = self.rx.try_recv().ok();
        self.took(b)
    }

    /// Waits for the next batch; `None` once the writer has gone.
    pub async fn next(&mut self) -> Option<Vec<T>> {
        let b = self.rx.recv().await;
        self.took(b)
    }

    /// Takes no more: returns what was handed and not taken (for the caller to give back).
    pub fn close(&mut self) -> Vec<T> {
        self.rx.close();
        let mut left = Vec::new();
        while let Some(b) = self.try_next() {
            left.extend(b);
        }
        left
    }
}

/// When a loop looks in the database for work nobody handed it (left by another gateway,
/// given back, stored while the loop was behind or gone): at first, when woken (a poll, a
/// notice), after a full batch, and at least every poll interval even while hand-offs keep
/// it busy.
pub(crate) struct Lookout {
    due: bool,
    next: Instant,
    every: Duration,
}

impl Lookout {
    pub fn new(every: Duration) -> Self {
        Lookout {
            due: true,
            next: Instant::now(),
            every,
        }
    }

    pub fn wake(&mut self) {
        self.due = true;
    }

    /// The next batch: claimed from the database (`claim`, at most `limit`) when a look is
    /// due, else — or when that finds nothing — what was handed over. A failed claim is
    /// logged (`what` was being claimed) and counts as nothing found.
    pub async fn next_batch<T>(
        &mut self,
        handed: &mut Handed<T>,
        limit: i64,
        claim: impl Future<Output = app::error::Result<Vec<T>>>,
        what: &str,
    ) -> Vec<T> {
        let now = Instant::now();
        if now >= self.next {
            self.due = true;
            self.next = now + self.every;
        }
        let mut batch = Vec::new();
        if self.due {
            batch = claim.await.unwrap_or_else(|e| {
                tracing::warn!(error = %e.operator_detail(), "cannot claim {what}");
                Vec::new()
            });
            self.due = batch.len() as i64 >= limit;
        }
        if batch.is_empty() {
            batch = handed.try_next().unwrap_or_default();
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_counts_what_waits_and_a_closed_taker_gives_batches_back() {
        let (give, mut take) = handoff::<u32>();
        assert!(give.has_room(2));
        give.send(vec![1, 2]).unwrap();
        assert!(!give.has_room(2));
        assert_eq!(take.try_next(), Some(vec![1, 2]));
        assert!(give.has_room(2));
        give.send(vec![3]).unwrap();
        assert_eq!(take.close(), vec![3]);
        assert!(give.taker_gone() && !give.has_room(2));
        assert_eq!(give.send(vec![4]), Err(vec![4]));
    }
}
