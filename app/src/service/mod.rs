//! One module per capability; each adds methods to [`crate::Hall`].
pub mod auth;
pub mod catalogue;
pub mod codes;
pub mod ledger;
pub mod outbox;
pub(crate) mod passwords;
pub mod subscribers;
pub mod subscriptions;
