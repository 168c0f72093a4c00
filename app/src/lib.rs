//! OpenHall's domain and its one service layer. The web hall, the SMS gateway and the staff
//! console are thin channels over [`Hall`].
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod hall;
pub mod service;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Invalid, Result};
pub use hall::Hall;
