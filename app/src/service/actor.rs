//! Who is acting on a subscriber's account: the subscriber, or customer care on their behalf
//! (SPEC §5). The rules that depend on it live here, so that every channel keeps them: staff
//! see personal data masked and never change the service password or the sign-in settings.
use crate::domain::Msisdn;
use crate::error::{Error, Invalid, Result};
use crate::hall::Hall;
use crate::service::subscribers::Profile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The subscriber themself.
    Subscriber,
    /// A staff member acting for the subscriber in an open impersonation.
    CustomerCare {
        staff_id: i64,
        impersonation_id: i64,
    },
}

impl Actor {
    /// A profile as this actor may see it: masked for customer care.
    pub(crate) fn view(self, p: Profile) -> Profile {
        match self {
            Actor::Subscriber => p,
            Actor::CustomerCare { .. } => p.masked(),
        }
    }

    fn refuse_customer_care(self) -> Result<()> {
        match self {
            Actor::Subscriber => Ok(()),
            Actor::CustomerCare { .. } => Err(Error::NotWhileActing),
        }
    }
}

impl Hall {
    /// The profile as this actor may see it: masked for customer care.
    pub async fn profile_as(&self, actor: Actor, msisdn: &Msisdn) -> Result<Profile> {
        Ok(actor.view(self.profile(msisdn).await?))
    }

    /// Changes the service password, typed twice; the subscriber's own act only.
    pub async fn change_password_as(
        &self,
        actor: Actor,
        msisdn: &Msisdn,
        current: &str,
        new: &str,
        repeat: &str,
    ) -> Result<i64> {
        actor.refuse_customer_care()?;
        if new != repeat {
            return Err(Invalid::PasswordsDiffer.into());
        }
        self.change_password(msisdn, current, new).await
    }

    /// Ends every session of the number; the subscriber's own act only.
    pub async fn sign_out_everywhere_as(&self, actor: Actor, msisdn: &Msisdn) -> Result<i64> {
        actor.refuse_customer_care()?;
        self.sign_out_everywhere(msisdn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;

    const CARE: Actor = Actor::CustomerCare {
        staff_id: 1,
        impersonation_id: 1,
    };

    #[tokio::test]
    async fn customer_care_sees_masked_data_and_changes_no_sign_in_setting() {
        let h = TestHall::empty().await;
        let m = h.subscriber("13800138000", 0).await;
        let own = h.profile_as(Actor::Subscriber, &m).await.unwrap();
        let care = h.profile_as(CARE, &m).await.unwrap();
        assert_eq!(own.name, "测试用户");
        assert_eq!(care.name, "测***");
        assert!(care.id_card.contains("********"));
        assert!(matches!(
            h.change_password_as(CARE, &m, "902468", "135790", "135790")
                .await,
            Err(Error::NotWhileActing)
        ));
        assert!(matches!(
            h.sign_out_everywhere_as(CARE, &m).await,
            Err(Error::NotWhileActing)
        ));
        // Typed twice differently: refused, nothing changed.
        assert!(matches!(
            h.change_password_as(Actor::Subscriber, &m, "902468", "135790", "135791")
                .await,
            Err(Error::Invalid(Invalid::PasswordsDiffer))
        ));
        // The subscriber's own password still works, and can be changed.
        h.change_password_as(Actor::Subscriber, &m, "902468", "135790", "135790")
            .await
            .unwrap();
    }
}
