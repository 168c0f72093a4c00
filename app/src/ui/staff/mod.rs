//! The customer-care console (SPEC §5) at `/staff`: its own session and CSRF token, pages for
//! agents, supervisors and admins, and the way into a subscriber's hall ("act as"). The rules
//! — roles, reasons, the 30-minute cap, masking, the audit trail — are the service layer's.
pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod session;

pub use pages::{StaffAdminPage, StaffAuditPage, StaffHomePage, StaffLoginPage};

/// Console pages and the roles that may open each (the server checks this before rendering;
/// a signed-out request goes to `/staff/login`).
pub const STAFF_PAGES: &[(&str, &[&str])] = &[
    ("/staff", &["agent", "supervisor"]),
    ("/staff/audit", &["supervisor"]),
    ("/staff/admin", &["admin"]),
];
