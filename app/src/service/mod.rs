//! One module per capability; each adds methods to [`crate::Hall`].
pub mod arrears;
pub mod auth;
pub mod cards;
pub mod catalogue;
pub mod codes;
pub mod history;
pub mod ledger;
pub mod outbox;
pub(crate) mod passwords;
pub mod payment;
pub mod subscribers;
pub mod subscriptions;
pub mod topup;
