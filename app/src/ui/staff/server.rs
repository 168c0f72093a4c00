//! What every console server function does first: find the hall and the staff session, and
//! check who is signed in.
use http::StatusCode;
use leptos::prelude::*;

use crate::error::Error;
use crate::hall::Hall;
use crate::service::staff::StaffMember;
use crate::ui::server::{fail, refuse, request_extension, request_lang};
use crate::ui::staff::session::{StaffSession, StaffWeb};

pub use crate::ui::server::client_addr;

pub async fn staff_web() -> Result<StaffWeb, ServerFnError> {
    let hall = request_extension::<Hall>().ok_or_else(|| ServerFnError::new("hall missing"))?;
    let StaffSession(session) = request_extension::<StaffSession>()
        .ok_or_else(|| ServerFnError::new("staff session layer missing"))?;
    let lang = request_lang();
    StaffWeb::load(hall, session, lang)
        .await
        .map_err(|e| fail(lang, e))
}

impl StaffWeb {
    /// The signed-in staff member (roles are checked by the service layer).
    pub fn member(&self) -> Result<StaffMember, ServerFnError> {
        self.member.clone().ok_or_else(|| {
            refuse(
                self.lang,
                StatusCode::UNAUTHORIZED,
                "请先登录客服工作台。",
                "Please sign in to the care console.",
            )
        })
    }

    pub fn refuse_input(&self, zh: &str, en: &str) -> ServerFnError {
        refuse(self.lang, StatusCode::BAD_REQUEST, zh, en)
    }

    pub fn check<T>(&self, r: crate::Result<T>) -> Result<T, ServerFnError> {
        r.map_err(|e| fail(self.lang, e))
    }

    pub fn fail(&self, e: Error) -> ServerFnError {
        fail(self.lang, e)
    }
}
