//! What every server function does first: find the hall and the browser's session, apply the
//! session rules, and turn a service error into a message in the page's language.
use http::request::Parts;
use http::{header, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use tower_sessions::Session;

use crate::domain::Msisdn;
use crate::error::Error;
use crate::hall::Hall;
use crate::ui::i18n::Lang;
use crate::ui::session::{Access, RequestChecks, Web};

/// What `f` finds in the request being answered, if any (its head as leptos_axum provides
/// it). Borrowed, not cloned: `use_context::<Parts>()` and `leptos_axum::extract` copy every
/// header and extension, several times per page.
pub fn in_request<R>(f: impl FnOnce(&Parts) -> Option<R>) -> Option<R> {
    with_context::<Parts, _>(f).flatten()
}

/// An extension the server put on the request (the hall, a session, the request's checks).
pub fn request_extension<T: Clone + Send + Sync + 'static>() -> Option<T> {
    in_request(|p| p.extensions.get::<T>().cloned())
}

/// A page's data the server already read for this request (the home page's memo reads it to
/// decide whether the page it rendered last still holds): the page's loader takes it from
/// here instead of reading it again.
#[derive(Clone)]
pub struct Known<T>(pub std::sync::Arc<T>);

/// The request's [`Known`] value of type `T`, if the server put one.
pub fn known<T: Clone + Send + Sync + 'static>() -> Option<T> {
    in_request(|p| p.extensions.get::<Known<T>>().map(|k| T::clone(&k.0)))
}

/// The browser's session with the rules applied.
pub async fn web() -> Result<Web, ServerFnError> {
    let hall = request_extension::<Hall>().ok_or_else(|| ServerFnError::new("hall missing"))?;
    let session = request_extension::<Session>()
        .ok_or_else(|| ServerFnError::new("session layer missing"))?;
    let lang = request_lang();
    let checks = request_extension::<RequestChecks>().unwrap_or_default();
    Web::load(hall, session, lang, &checks)
        .await
        .map_err(|e| fail(lang, e))
}

pub fn request_lang() -> Lang {
    in_request(|p| {
        Some(Lang::from_cookie_header(
            p.headers.get(header::COOKIE).and_then(|v| v.to_str().ok()),
        ))
    })
    .unwrap_or_default()
}

/// The client's address as the server saw it (for the audit log).
pub fn client_addr() -> String {
    in_request(|p| {
        p.extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
    })
    .unwrap_or_else(|| "unknown".into())
}

/// Whether the request is a plain form post (no JavaScript): those are answered with a
/// redirect, so the status must stay a redirect.
fn is_form_post() -> bool {
    in_request(|p| {
        p.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.contains("text/html"))
    })
    .unwrap_or(false)
}

fn set_status(status: StatusCode) {
    if !is_form_post() {
        if let Some(res) = use_context::<ResponseOptions>() {
            res.set_status(status);
        }
    }
}

/// A service error as the person should read it.
pub fn fail(lang: Lang, e: Error) -> ServerFnError {
    if matches!(e, Error::Forbidden | Error::NotWhileActing) {
        set_status(StatusCode::FORBIDDEN);
    } else if e.is_user_error() {
        set_status(StatusCode::BAD_REQUEST);
    } else {
        set_status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let text = match (lang, e.is_user_error()) {
        (_, false) => lang
            .pick(
                "系统繁忙,请稍后再试。",
                "The system is busy; please try again later.",
            )
            .to_owned(),
        (Lang::Zh, true) => e.zh(),
        (Lang::En, true) => e.to_string(),
    };
    ServerFnError::new(text)
}

pub fn refuse(lang: Lang, status: StatusCode, zh: &str, en: &str) -> ServerFnError {
    set_status(status);
    ServerFnError::new(match lang {
        Lang::Zh => zh,
        Lang::En => en,
    })
}

impl Web {
    /// The signed-in subscriber; every subscriber function takes the number from here and
    /// never from the request.
    pub fn subscriber(&self) -> Result<Msisdn, ServerFnError> {
        match self.access() {
            Access::SignedIn(m) => Ok(m),
            Access::MustChangePassword(_) => Err(refuse(
                self.lang,
                StatusCode::FORBIDDEN,
                "请先修改初始服务密码。",
                "Please change your initial service password first.",
            )),
            Access::SignedOut => Err(refuse(
                self.lang,
                StatusCode::UNAUTHORIZED,
                "请先登录。",
                "Please sign in.",
            )),
        }
    }

    /// The signed-in subscriber, also while the initial password still has to be changed.
    pub fn subscriber_before_password_change(&self) -> Result<Msisdn, ServerFnError> {
        match self.access() {
            Access::SignedIn(m) | Access::MustChangePassword(m) => Ok(m),
            Access::SignedOut => Err(refuse(
                self.lang,
                StatusCode::UNAUTHORIZED,
                "请先登录。",
                "Please sign in.",
            )),
        }
    }

    /// Changes the service password (typed twice) as this session's actor and keeps this
    /// session signed in.
    pub async fn change_password(
        &mut self,
        msisdn: &Msisdn,
        current: &str,
        new: &str,
        repeat: &str,
    ) -> Result<(), ServerFnError> {
        let epoch = self.check(
            self.hall
                .change_password_as(self.actor(), msisdn, current, new, repeat)
                .await,
        )?;
        self.password_changed(epoch).await
    }

    /// Records a password change in this session: the new epoch keeps it signed in while every
    /// other session of the number ends; the id rotates (a privilege change).
    pub async fn password_changed(&mut self, epoch: i64) -> Result<(), ServerFnError> {
        self.state.epoch = epoch;
        self.state.must_change_password = false;
        self.session
            .cycle_id()
            .await
            .map_err(|e| self.fail(Error::Storage(e.to_string())))?;
        let r = self.save().await;
        self.check(r)
    }

    /// The signed-in subscriber, who must also have passed the second factor recently.
    pub fn subscriber_with_second_factor(&self) -> Result<Msisdn, ServerFnError> {
        let m = self.subscriber()?;
        if !self.second_factor_fresh() {
            return Err(refuse(
                self.lang,
                StatusCode::FORBIDDEN,
                "此操作需要短信验证码,请先完成验证。",
                "This needs an SMS code: please verify first.",
            ));
        }
        Ok(m)
    }

    /// Who is acting: the subscriber, or customer care on their behalf.
    pub fn actor(&self) -> crate::service::actor::Actor {
        use crate::service::actor::Actor;
        match &self.acting {
            Some(i) => Actor::CustomerCare {
                staff_id: i.staff_id,
                impersonation_id: i.id,
            },
            None => Actor::Subscriber,
        }
    }

    /// Wraps a service result.
    pub fn check<T>(&self, r: crate::Result<T>) -> Result<T, ServerFnError> {
        r.map_err(|e| fail(self.lang, e))
    }

    pub fn fail(&self, e: Error) -> ServerFnError {
        fail(self.lang, e)
    }
}
