//! One module per capability; each adds methods to [`crate::Hall`].
pub mod billing;
pub mod ledger;
pub mod month_close;
pub mod outbox;
pub(crate) mod passwords;
pub mod points;
pub mod rating;
pub mod subscribers;
pub mod usage;
