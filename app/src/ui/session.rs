//! The web hall's session rules (SPEC §3, §6), on top of tower-sessions: who is signed in,
//! the 15-minute idle timeout, the 10-minute second-factor window, the session epoch that
//! "sign out everywhere" and a password change move on, the CSRF token and code cool-downs.
//! Times come from the hall's clock, so tests can move them.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::Msisdn;
use crate::error::Error;
use crate::hall::Hall;
use crate::service::impersonation::Impersonation;
use crate::ui::i18n::Lang;

pub const IDLE_MS: i64 = 15 * 60 * 1000;
pub const SECOND_FACTOR_MS: i64 = 10 * 60 * 1000;
/// How far apart two sightings of a browser must be for the later one to be stored: the idle
/// timeout can end a session up to this much early, and a burst of requests writes the
/// session (to Redis in production) once.
const SEEN_STEP_MS: i64 = 1000;
const KEY: &str = "web";

/// Everything the web hall keeps about a browser.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WebState {
    pub csrf: String,
    pub msisdn: Option<String>,
    pub epoch: i64,
    pub must_change_password: bool,
    pub last_seen_ms: i64,
    /// When the second factor was last passed; it opens a 10-minute window.
    pub second_factor_ms: Option<i64>,
    /// When a code was last sent, per purpose key, to show the cool-down.
    pub code_sent_ms: BTreeMap<String, i64>,
    /// Set when a signed-in session timed out, to tell the person why they are at /login.
    pub expired: bool,
    /// A customer-care agent acting as this subscriber: the impersonation's id.
    pub impersonation: Option<i64>,
    /// Set when the agent's session ended (cap, supervisor, sign-out) to say so at /login.
    pub acting_ended: bool,
}

/// Where a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    SignedOut,
    MustChangePassword(Msisdn),
    SignedIn(Msisdn),
}

/// What a console keeps in its session under its own key (the hall's `WebState`, the staff
/// console's `StaffState`): read with a CSRF token made on first use; `true` when that token
/// is new, so the caller saves.
pub(crate) async fn read_state<T>(session: &Session, key: &str) -> Result<(T, bool), Error>
where
    T: serde::de::DeserializeOwned + Default + HasCsrf,
{
    let mut state: T = session
        .get(key)
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
        .unwrap_or_default();
    let csrf = state.csrf_mut();
    let fresh = csrf.is_empty();
    if fresh {
        *csrf = new_token();
    }
    Ok((state, fresh))
}

/// Stores a console's state under its key.
pub(crate) async fn write_state<T: Serialize>(
    session: &Session,
    key: &str,
    state: &T,
) -> Result<(), Error> {
    session
        .insert(key, state)
        .await
        .map_err(|e| Error::Storage(e.to_string()))
}

/// A session state with a CSRF token of its own.
pub(crate) trait HasCsrf {
    fn csrf_mut(&mut self) -> &mut String;
}

impl HasCsrf for WebState {
    fn csrf_mut(&mut self) -> &mut String {
        &mut self.csrf
    }
}

pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The browser's session, loaded with the rules applied.
pub struct Web {
    pub hall: Hall,
    pub session: Session,
    pub state: WebState,
    pub lang: Lang,
    /// The open impersonation when customer care acts as the subscriber (checked on every
    /// request: ended, past its 30 minutes or its staff member disabled, and the browser is
    /// signed out).
    pub acting: Option<Impersonation>,
    /// The request's memo, kept up to date by [`Web::save`].
    checks: RequestChecks,
}

/// What one request has already checked about its session — the epoch query and the
/// impersonation — so that the page guard, the page and every server function the page
/// renders check once. Put in the request's extensions by the server; the lock makes the
/// page's concurrent loads wait for the first instead of each querying.
#[derive(Clone, Default)]
pub struct RequestChecks(std::sync::Arc<tokio::sync::Mutex<Memo>>);

#[derive(Default)]
struct Memo {
    /// The state as this request last read or saved it. Every save goes through
    /// [`Web::save`], so the request's later loads take it from here instead of copying and
    /// decoding the session record's JSON again (four times a page view).
    state: Option<WebState>,
    checked: Option<Checked>,
}

struct Checked {
    msisdn: String,
    epoch: i64,
    impersonation: Option<i64>,
    acting: Option<Impersonation>,
    seen_ms: i64,
}

impl Web {
    /// Loads the state, ends it when idle too long or when its epoch is stale, and marks the
    /// browser as seen now. Saves what changed. Within one request (`checks`) the database
    /// is asked once.
    pub async fn load(
        hall: Hall,
        session: Session,
        lang: Lang,
        checks: &RequestChecks,
    ) -> Result<Web, Error> {
        let mut memo = checks.0.lock().await;
        let (mut state, mut changed) = match &memo.state {
            Some(state) => (state.clone(), false),
            None => read_state::<WebState>(&session, KEY).await?,
        };
        if let Some(done) = memo.checked.as_ref().filter(|c| {
            state.msisdn.as_deref() == Some(c.msisdn.as_str())
                && state.epoch == c.epoch
                && state.impersonation == c.impersonation
                && state.last_seen_ms == c.seen_ms
        }) {
            let acting = done.acting.clone();
            if changed {
                write_state(&session, KEY, &state).await?;
            }
            memo.state = Some(state.clone());
            return Ok(Web {
                acting,
                hall,
                session,
                state,
                lang,
                checks: checks.clone(),
            });
        }
        let now = hall.now().timestamp_millis();
        let mut acting = None;
        if let Some(id) = state.impersonation {
            match hall.check_impersonation(id).await {
                Ok(imp) if state.msisdn.as_deref() == Some(imp.msisdn.as_str()) => {
                    acting = Some(imp)
                }
                Ok(_) | Err(Error::ImpersonationOver) => {
                    state = WebState {
                        csrf: state.csrf.clone(),
                        acting_ended: true,
                        ..WebState::default()
                    };
                    changed = true;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(m) = state.msisdn.clone() {
            let idle = now - state.last_seen_ms >= IDLE_MS;
            let stale = match Msisdn::parse(&m) {
                Ok(msisdn) => hall.session_epoch(&msisdn).await? != state.epoch,
                Err(_) => true,
            };
            if idle || stale {
                state = WebState {
                    csrf: state.csrf.clone(),
                    expired: idle,
                    ..WebState::default()
                };
                changed = true;
            } else {
                // Seen again within the second (a page and the calls its scripts make): the
                // time stored stands and the session is not written again for it.
                if now - state.last_seen_ms >= SEEN_STEP_MS {
                    state.last_seen_ms = now;
                    changed = true;
                }
                memo.checked = Some(Checked {
                    msisdn: m,
                    epoch: state.epoch,
                    impersonation: state.impersonation,
                    acting: acting.clone(),
                    seen_ms: state.last_seen_ms,
                });
            }
        }
        if changed {
            write_state(&session, KEY, &state).await?;
        }
        memo.state = Some(state.clone());
        Ok(Web {
            hall,
            session,
            state,
            lang,
            acting,
            checks: checks.clone(),
        })
    }

    /// Stores the state in the session, and in the request's memo for its later loads.
    pub async fn save(&self) -> Result<(), Error> {
        write_state(&self.session, KEY, &self.state).await?;
        self.checks.0.lock().await.state = Some(self.state.clone());
        Ok(())
    }

    pub fn now_ms(&self) -> i64 {
        self.hall.now().timestamp_millis()
    }

    pub fn access(&self) -> Access {
        match self.state.msisdn.as_deref().map(Msisdn::parse) {
            Some(Ok(m)) if self.state.must_change_password => Access::MustChangePassword(m),
            Some(Ok(m)) => Access::SignedIn(m),
            _ => Access::SignedOut,
        }
    }

    pub fn second_factor_fresh(&self) -> bool {
        self.state
            .second_factor_ms
            .is_some_and(|at| self.now_ms() - at < SECOND_FACTOR_MS)
    }

    /// Seconds until another code of this purpose may be requested (0: now).
    pub fn resend_in(&self, purpose: &str) -> i64 {
        self.state
            .code_sent_ms
            .get(purpose)
            .map(|at| (60_000 - (self.now_ms() - at)).max(0).div_euclid(1000))
            .unwrap_or(0)
    }

    pub async fn note_code_sent(&mut self, purpose: &str) -> Result<(), Error> {
        let now = self.now_ms();
        self.state.code_sent_ms.insert(purpose.to_owned(), now);
        self.save().await
    }

    /// Signs the browser in: a new session id (against fixation) and a new CSRF token.
    pub async fn sign_in(
        &mut self,
        msisdn: &Msisdn,
        epoch: i64,
        must_change_password: bool,
    ) -> Result<(), Error> {
        self.session
            .cycle_id()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.state = WebState {
            csrf: new_token(),
            msisdn: Some(msisdn.as_str().to_owned()),
            epoch,
            must_change_password,
            last_seen_ms: self.now_ms(),
            ..WebState::default()
        };
        self.save().await
    }

    /// A privilege change (second factor passed, password changed): rotate the id.
    pub async fn elevate(&mut self) -> Result<(), Error> {
        self.session
            .cycle_id()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.state.second_factor_ms = Some(self.now_ms());
        self.save().await
    }

    /// Opens the subscriber's hall for customer care: like a sign-in (new id, new token), with
    /// no second factor carried over — the agent types the subscriber's codes.
    pub async fn start_acting(&mut self, imp: Impersonation, epoch: i64) -> Result<(), Error> {
        self.sign_in(&imp.msisdn, epoch, false).await?;
        self.state.impersonation = Some(imp.id);
        self.acting = Some(imp);
        self.save().await
    }

    /// Ends customer care's session for this browser (the banner's button, or sign-out while
    /// acting) and signs the browser out of the subscriber's hall.
    pub async fn end_acting(&mut self, client_addr: &str) -> Result<(), Error> {
        if let Some(imp) = self.acting.take() {
            if let Some(staff) = self.hall.staff_by_id(imp.staff_id).await? {
                match self
                    .hall
                    .end_impersonation(&staff, imp.id, client_addr)
                    .await
                {
                    Ok(()) | Err(Error::ImpersonationOver) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.sign_out().await
    }

    pub async fn sign_out(&mut self) -> Result<(), Error> {
        self.state = WebState {
            csrf: new_token(),
            ..WebState::default()
        };
        self.session
            .cycle_id()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.save().await
    }

    /// Reads and clears the "your session timed out" flag.
    pub async fn take_expired(&mut self) -> Result<bool, Error> {
        if !self.state.expired {
            return Ok(false);
        }
        self.state.expired = false;
        self.save().await?;
        Ok(true)
    }

    /// Reads and clears the "customer care's session has ended" flag.
    pub async fn take_acting_ended(&mut self) -> Result<bool, Error> {
        if !self.state.acting_ended {
            return Ok(false);
        }
        self.state.acting_ended = false;
        self.save().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower_sessions::MemoryStore;

    use super::*;
    use crate::testing::TestHall;

    async fn load(t: &TestHall, session: &Session, checks: &RequestChecks) -> Web {
        Web::load(t.hall.clone(), session.clone(), Lang::Zh, checks)
            .await
            .unwrap()
    }

    /// A burst of requests writes the session once; the next second's request writes it, and
    /// the idle timeout counts from the time stored.
    #[tokio::test]
    async fn a_browser_seen_again_within_the_second_is_not_written_again() {
        use chrono::Duration;
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let store = Arc::new(MemoryStore::default());
        let session = Session::new(None, store.clone(), None);
        let mut web = load(&t, &session, &RequestChecks::default()).await;
        let epoch = t.session_epoch(&m).await.unwrap();
        web.sign_in(&m, epoch, false).await.unwrap();
        session.save().await.unwrap();
        let signed_in_at = t.now().timestamp_millis();
        // Each request is a new `Session` on the stored record, as the session layer makes it.
        let request = || Session::new(session.id(), store.clone(), None);

        t.clock.advance(Duration::milliseconds(999));
        let soon = request();
        let web = load(&t, &soon, &RequestChecks::default()).await;
        assert_eq!(web.access(), Access::SignedIn(m.clone()));
        assert!(!soon.is_modified(), "within the second: not written");
        assert_eq!(web.state.last_seen_ms, signed_in_at);

        t.clock.advance(Duration::milliseconds(1));
        let later = request();
        let web = load(&t, &later, &RequestChecks::default()).await;
        assert!(later.is_modified(), "a second on: written");
        assert_eq!(web.state.last_seen_ms, signed_in_at + 1000);
        later.save().await.unwrap();

        // Idle for the timeout after the time stored: signed out, marked expired.
        t.clock
            .set(chrono::DateTime::from_timestamp_millis(signed_in_at + 1000 + IDLE_MS).unwrap());
        let idle = request();
        let web = load(&t, &idle, &RequestChecks::default()).await;
        assert_eq!(web.access(), Access::SignedOut);
        assert!(web.state.expired);
    }

    /// A request decodes the session's record once; what it saves, its later loads see.
    #[tokio::test]
    async fn a_request_reads_the_session_record_once_and_sees_what_it_saves() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let request = RequestChecks::default();
        let mut web = load(&t, &session, &request).await;
        assert_eq!(web.access(), Access::SignedOut);
        let epoch = t.session_epoch(&m).await.unwrap();
        web.sign_in(&m, epoch, false).await.unwrap();
        let saved = web.state.csrf.clone();
        // Written behind the request's back: its later loads keep what it saved…
        write_state(&session, KEY, &WebState::default())
            .await
            .unwrap();
        let again = load(&t, &session, &request).await;
        assert_eq!(again.access(), Access::SignedIn(m.clone()));
        assert_eq!(again.state.csrf, saved);
        // …and the next request reads the record.
        let next = load(&t, &session, &RequestChecks::default()).await;
        assert_eq!(next.access(), Access::SignedOut);
        assert_ne!(next.state.csrf, saved);
    }

    #[tokio::test]
    async fn a_request_checks_its_session_once_and_the_next_request_again() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let mut web = load(&t, &session, &RequestChecks::default()).await;
        let epoch = t.session_epoch(&m).await.unwrap();
        web.sign_in(&m, epoch, false).await.unwrap();

        let request = RequestChecks::default();
        assert_eq!(
            load(&t, &session, &request).await.access(),
            Access::SignedIn(m.clone())
        );
        // Signed out everywhere while this request is under way: the request's later loads
        // (the page's server functions) keep what it checked…
        t.sign_out_everywhere(&m).await.unwrap();
        assert_eq!(
            load(&t, &session, &request).await.access(),
            Access::SignedIn(m.clone())
        );
        // …and the next request is signed out.
        assert_eq!(
            load(&t, &session, &RequestChecks::default()).await.access(),
            Access::SignedOut
        );
        // What changes within a request is checked afresh, not taken from its memo.
        let fresh = t.session_epoch(&m).await.unwrap();
        let request = RequestChecks::default();
        let mut web = load(&t, &session, &request).await;
        web.sign_in(&m, fresh, false).await.unwrap();
        let mut web = load(&t, &session, &request).await;
        assert_eq!(web.access(), Access::SignedIn(m.clone()));
        web.sign_in(&m, fresh - 1, false).await.unwrap();
        assert_eq!(
            load(&t, &session, &request).await.access(),
            Access::SignedOut,
            "a stale epoch"
        );
    }
}
