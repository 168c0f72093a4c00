//! Housekeeping the hall does by itself: suspending numbers in arrears past the grace period
//! and expiring points. Both are idempotent, so several instances may run them.
use std::time::Duration;

use app::Hall;

pub fn spawn(hall: Hall) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = hall.enforce_arrears().await {
                tracing::warn!("arrears job: {e}");
            }
            if let Err(e) = hall.expire_points().await {
                tracing::warn!("points expiry job: {e}");
            }
        }
    });
}
