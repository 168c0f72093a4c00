pub(crate) mod coalesce;
pub mod db;
pub mod ephemeral;
pub(crate) mod local_reads;
pub(crate) mod local_writes;
pub(crate) mod reads;

pub(crate) use db::WriteTx;
pub use db::{Backend, Db};
pub use ephemeral::{Ephemeral, MemoryStore, RateDecision, RedisStore};
