//! One module per capability; each adds methods to [`crate::Hall`].
pub mod arrears;
pub mod cards;
pub mod history;
pub mod ledger;
pub mod outbox;
pub(crate) mod passwords;
pub mod payment;
pub mod subscribers;
pub mod topup;
