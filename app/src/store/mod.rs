pub mod db;
pub mod ephemeral;

pub use db::{Backend, Db};
pub use ephemeral::{Ephemeral, MemoryStore, RateDecision, RedisStore};
