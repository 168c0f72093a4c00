//! One module per capability; each adds methods to [`crate::Hall`].
pub mod ledger;
pub mod outbox;
pub(crate) mod passwords;
pub mod subscribers;
