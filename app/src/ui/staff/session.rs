//! The staff console's own session (SPEC §5): a separate cookie from the subscriber hall's, so
//! one browser can hold both and neither leaks into the other. It holds who is signed in, a
//! CSRF token of its own and the idle clock; the staff record is read again on every request,
//! so a disabled account stops working at once.
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::Error;
use crate::hall::Hall;
use crate::service::staff::{Role, StaffMember};
use crate::ui::i18n::Lang;
use crate::ui::session::{new_token, read_state, write_state, HasCsrf};

pub const STAFF_IDLE_MS: i64 = 15 * 60 * 1000;
const KEY: &str = "staff";

/// The staff session, put into the request's extensions under this name by the server (the
/// subscriber hall's session is the plain `Session`).
#[derive(Clone)]
pub struct StaffSession(pub Session);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StaffState {
    pub csrf: String,
    pub staff_id: Option<i64>,
    pub username: Option<String>,
    pub last_seen_ms: i64,
    pub expired: bool,
    /// A new account's TOTP secret, shown once to the admin who created it.
    pub new_secret: Option<(String, String)>,
}

impl HasCsrf for StaffState {
    fn csrf_mut(&mut self) -> &mut String {
        &mut self.csrf
    }
}

pub struct StaffWeb {
    pub hall: Hall,
    pub session: Session,
    pub state: StaffState,
    pub lang: Lang,
    pub member: Option<StaffMember>,
}

impl StaffWeb {
    pub async fn load(hall: Hall, session: Session, lang: Lang) -> Result<StaffWeb, Error> {
        let (mut state, mut changed) = read_state::<StaffState>(&session, KEY).await?;
        let now = hall.now().timestamp_millis();
        let mut member = None;
        if let Some(id) = state.staff_id {
            let idle = now - state.last_seen_ms >= STAFF_IDLE_MS;
            let current = hall.staff_by_id(id).await?;
            match current {
                Some(m) if !idle && !m.disabled && Some(&m.username) == state.username.as_ref() => {
                    state.last_seen_ms = now;
                    member = Some(m);
                }
                _ => {
                    state = StaffState {
                        csrf: state.csrf.clone(),
                        expired: idle,
                        ..StaffState::default()
                    };
                }
            }
            changed = true;
        }
        let web = StaffWeb {
            hall,
            session,
            state,
            lang,
            member,
        };
        if changed {
            web.save().await?;
        }
        Ok(web)
    }

    pub async fn save(&self) -> Result<(), Error> {
        write_state(&self.session, KEY, &self.state).await
    }

    pub fn role(&self) -> Option<Role> {
        self.member.as_ref().map(|m| m.role)
    }

    /// A new session id and token for the signed-in staff member (against fixation).
    pub async fn sign_in(&mut self, member: StaffMember) -> Result<(), Error> {
        self.session
            .cycle_id()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.state = StaffState {
            csrf: new_token(),
            staff_id: Some(member.id),
            username: Some(member.username.clone()),
            last_seen_ms: self.hall.now().timestamp_millis(),
            ..StaffState::default()
        };
        self.member = Some(member);
        self.save().await
    }

    /// Signs out, ending the staff member's open impersonation first: nobody keeps acting as
    /// a subscriber after leaving the console.
    pub async fn sign_out(&mut self, client_addr: &str) -> Result<(), Error> {
        if let Some(m) = self.member.take() {
            if let Some(imp) = self.hall.current_impersonation(m.id).await? {
                match self.hall.end_impersonation(&m, imp.id, client_addr).await {
                    Ok(()) | Err(Error::ImpersonationOver) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.state = StaffState {
            csrf: new_token(),
            ..StaffState::default()
        };
        self.session
            .cycle_id()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        self.save().await
    }
}
