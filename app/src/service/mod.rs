//! One module per capability; each adds methods to [`crate::Hall`].
pub mod audit;
pub mod impersonation;
pub mod ledger;
pub mod outbox;
pub(crate) mod passwords;
pub mod staff;
pub mod subscribers;
pub mod totp;
