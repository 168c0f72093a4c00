//! One module per page, each holding the page and the server functions it calls.
mod account;
pub(crate) mod bills;
mod details;
mod home;
mod invoices;
mod login;
mod password;
mod points;
mod products;
mod topup;

pub use account::AccountPage;
pub use bills::BillsPage;
pub use details::DetailsPage;
#[cfg(feature = "ssr")]
pub use home::home_data;
pub use home::{HomeData, HomePage};
pub use invoices::{InvoicePage, InvoicesPage};
pub use login::{CodeButton, LoginPage};
pub use password::PasswordPage;
pub use points::PointsPage;
pub use products::{ProductPage, ProductsPage};
pub use topup::{PaymentPage, ReceiptPage, TopUpPage};
