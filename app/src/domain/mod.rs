//! Domain types: each validates on construction, so code that holds one can trust it.
mod money;
mod msisdn;
mod period;
mod points;
mod product_code;
mod service_password;
mod sms_code;
mod subscriber;

pub use money::Fen;
pub use msisdn::Msisdn;
pub use period::{shanghai, Period};
pub use points::Points;
pub use product_code::ProductCode;
pub use service_password::ServicePassword;
pub use sms_code::SmsCode;
pub use subscriber::{Brand, Status, Tier};
