//! The account at a glance, as the home page shows it: profile, balance, this month so far,
//! points and the plan — read on one connection, the profile once.
use crate::domain::{Msisdn, Period};
use crate::error::Result;
use crate::hall::Hall;
use crate::service::actor::Actor;
use crate::service::billing::{statement_of_known, MonthToDate};
use crate::service::catalogue::{load_product, Product};
use crate::service::ledger::{load_balance, Balance};
use crate::service::points::{summary_of_known, PointsSummary};
use crate::service::subscribers::{load_profile, Profile};

#[derive(Clone, Debug)]
pub struct Overview {
    pub profile: Profile,
    pub balance: Balance,
    pub month_to_date: MonthToDate,
    pub points: PointsSummary,
    pub plan: Product,
}

impl Hall {
    /// The overview as this actor may see it (the profile masked for customer care).
    pub async fn overview_as(&self, actor: Actor, msisdn: &Msisdn) -> Result<Overview> {
        let now = self.now();
        let mut conn = self.db().pool().acquire().await?;
        let profile = load_profile(&mut conn, msisdn).await?;
        let balance = load_balance(&mut conn, msisdn).await?;
        let month_to_date = statement_of_known(&mut conn, msisdn, Period::containing(now)).await?;
        let points = summary_of_known(&mut conn, msisdn, now).await?;
        let plan = load_product(&mut conn, &profile.plan).await?;
        Ok(Overview {
            profile: actor.view(profile),
            balance,
            month_to_date,
            points,
            plan,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::to_value;

    use super::*;
    use crate::domain::ProductCode;
    use crate::error::Error;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn the_overview_is_what_each_query_says_on_its_own() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 12_000).await;
        t.subscribe(&m, &ProductCode::parse("EDU10").unwrap())
            .await
            .unwrap();
        t.grant_points(&m, 700, "测试", "g1").await.unwrap();

        let o = t.overview_as(Actor::Subscriber, &m).await.unwrap();
        assert_eq!(
            to_value(&o.profile).unwrap(),
            to_value(t.profile(&m).await.unwrap()).unwrap()
        );
        assert_eq!(o.balance, t.balance(&m).await.unwrap());
        assert_eq!(
            to_value(&o.month_to_date).unwrap(),
            to_value(t.month_to_date(&m).await.unwrap()).unwrap()
        );
        assert_eq!(o.month_to_date.rating.wlan.allowance, 40 * 60);
        assert_eq!(
            to_value(&o.points).unwrap(),
            to_value(t.points(&m).await.unwrap()).unwrap()
        );
        assert_eq!(o.points.balance.get(), 700);
        assert_eq!(o.plan.code, o.profile.plan);

        let care = Actor::CustomerCare {
            staff_id: 1,
            impersonation_id: 1,
        };
        let masked = t.overview_as(care, &m).await.unwrap();
        assert_eq!(
            to_value(&masked.profile).unwrap(),
            to_value(o.profile.masked()).unwrap()
        );

        let stranger = Msisdn::parse("13900000001").unwrap();
        assert!(matches!(
            t.overview_as(Actor::Subscriber, &stranger).await,
            Err(Error::UnknownSubscriber)
        ));
    }
}
