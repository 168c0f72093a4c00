//! `server`: the web hall and staff console, plus the operator's commands
//! (`server seed`, `server migrate`, `server close-month YYYY-MM`).
pub mod cli;
pub mod handset;
pub mod home_memo;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod sessions;
pub mod staff;
pub mod web;
