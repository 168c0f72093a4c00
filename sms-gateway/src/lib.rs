//! The SMS business hall: the command grammar, replies and the SMPP link to the SMSC.
pub mod commands;
pub mod grammar;
pub mod load;
pub mod observe;
pub mod runtime;
pub mod simulator;
pub mod smpp;
