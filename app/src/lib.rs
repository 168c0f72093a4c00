//! OpenHall's domain, its one service layer and the web hall's UI. The web hall, the SMS
//! gateway and the staff console are thin channels over [`Hall`].
//!
//! Features: `service` (the service layer and its storage), `ssr` (the web hall rendered on
//! the server), `hydrate` (the browser bundle: domain types and UI only).
#![recursion_limit = "256"]
#[cfg(feature = "service")]
pub mod clock;
#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod demo;
pub mod domain;
pub mod error;
#[cfg(feature = "service")]
pub mod hall;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod store;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(any(all(test, feature = "service"), feature = "testing"))]
pub mod testing;
pub mod ui;

pub use error::{Error, Invalid, Result};
#[cfg(feature = "service")]
pub use hall::Hall;

/// The browser bundle's entry point: hydrate the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(ui::App);
    // Tells tests (and curious people) the bundle ran.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "1");
    }
}
