//! The account at a glance, as the home page shows it: profile, balance, this month so far,
//! points and the plan — eight reads in one batch (on SQLite on this thread, see
//! [`crate::store::local_reads`]), the profile once;
//! the month's usage records read only when they changed since this process last rated the
//! month (`month_events`).
use crate::domain::{Msisdn, Period};
use crate::error::Result;
use crate::hall::Hall;
use crate::service::actor::Actor;
use crate::service::billing::{statement_from, statement_reads, MonthToDate};
use crate::service::catalogue::{plan_read, product_from, Product};
use crate::service::ledger::{balance_from, balance_read, Balance};
use crate::service::points::{totals_from, totals_read, PointsTotals};
use crate::service::subscribers::{profile_from, profile_read, Profile};

#[derive(Clone, Debug)]
pub struct Overview {
    pub profile: Profile,
    pub balance: Balance,
    pub month_to_date: MonthToDate,
    pub points: PointsTotals,
    pub plan: Product,
}

impl Hall {
    /// The overview as this actor may see it (the profile masked for customer care).
    pub async fn overview_as(&self, actor: Actor, msisdn: &Msisdn) -> Result<Overview> {
        let now = self.now();
        let period = Period::containing(now);
        let mut reads = vec![profile_read(msisdn), balance_read(msisdn)];
        reads.extend(statement_reads(msisdn, period));
        reads.push(totals_read(msisdn, now));
        reads.push(plan_read(msisdn));
        let mut reader = self.db().reader().await?;
        let mut rows = reader.fetch_each(reads).await?;
        // The profile first: a stranger is an unknown subscriber, whatever else is missing.
        let profile = profile_from(&rows.next())?;
        let balance = balance_from(&rows.next())?;
        let month_to_date = statement_from(self, &mut reader, msisdn, period, &mut rows).await?;
        drop(reader);
        let points = totals_from(&rows.next())?;
        let plan = product_from(&rows.next())?;
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

    /// The month's usage records are kept between views; records another process adds show
    /// in the next view all the same.
    #[tokio::test]
    async fn usage_recorded_by_another_process_shows_in_the_next_view() {
        use crate::service::usage::{Direction, UsageKind, UsageRecord};
        use std::sync::Arc;
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 12_000).await;
        let elsewhere = Hall::new(
            t.db().clone(),
            crate::testing::fresh_ephemeral().await,
            Arc::new(t.clock.clone()),
            crate::config::Settings::default(),
        );
        let call = |reference: &str, minutes: i64| UsageRecord {
            reference: reference.into(),
            started_at: t.now(),
            kind: UsageKind::Call {
                other_party: "13912345678".into(),
                direction: Direction::Out,
                duration_secs: minutes * 60,
            },
        };
        let view = || async {
            t.overview_as(Actor::Subscriber, &m)
                .await
                .unwrap()
                .month_to_date
        };
        assert_eq!(view().await.rating.voice.used, 0);
        elsewhere
            .record_usage(&m, &[call("c1", 250)])
            .await
            .unwrap();
        let after_one = view().await;
        assert_eq!(after_one.rating.voice.used, 250);
        elsewhere
            .record_usage(&m, &[call("c2", 3), call("c3", 1)])
            .await
            .unwrap();
        let after_three = view().await;
        assert_eq!(after_three.rating.voice.used, 254);
        assert_eq!(
            to_value(&after_three).unwrap(),
            to_value(t.month_to_date(&m).await.unwrap()).unwrap(),
            "the same as the statement read whole"
        );
        assert!(after_three.total > after_one.total, "overage charged");
        assert_eq!(
            to_value(view().await).unwrap(),
            to_value(&after_three).unwrap(),
            "nothing new: the same again"
        );
    }

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
        let whole = t.points(&m).await.unwrap();
        assert_eq!(o.points.balance, whole.balance);
        assert_eq!(o.points.expiring_this_year, whole.expiring_this_year);
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
