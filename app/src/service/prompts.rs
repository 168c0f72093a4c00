//! 二次确认: an SMS order (`KT…`, `DH…`) only records what is asked and answers with a prompt;
//! only the subscriber's reply (是 / Y) within the window applies it. A prompt is single use,
//! bound to its number and to the one action it names, and a newer prompt replaces an older one.
use serde::{Deserialize, Serialize};

use crate::domain::{Fen, Msisdn, ProductCode};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::subscriptions::Subscribed;

/// What a confirmation will do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingAction {
    Subscribe(ProductCode),
    Redeem(String),
}

#[derive(Serialize, Deserialize)]
struct StoredPrompt {
    id: String,
    action: PendingAction,
    issued_ms: i64,
}

/// The prompt to send back: the gateway's templates word it.
#[derive(Clone, Debug, Serialize)]
pub struct Prompt {
    pub action: PendingAction,
    pub name_zh: String,
    /// What confirming costs: a fee for a product, points for a reward.
    pub fee: Option<Fen>,
    pub points: Option<i64>,
    pub rule_zh: String,
    pub valid_minutes: u64,
}

#[derive(Debug, Serialize)]
pub enum Confirmed {
    Subscribed(Subscribed),
    Redeemed(crate::service::points::Redemption),
}

fn key(m: &Msisdn) -> String {
    format!("prompt:{}", m.as_str())
}

impl Hall {
    /// Checks that the action could be done now (so the subscriber is not asked to confirm
    /// something doomed) and records the prompt.
    pub async fn ask_confirmation(&self, msisdn: &Msisdn, action: PendingAction) -> Result<Prompt> {
        let ttl = self.settings().confirm_ttl;
        let valid_minutes = ttl.as_secs().div_ceil(60);
        let prompt = match &action {
            PendingAction::Subscribe(code) => {
                let profile = self.profile(msisdn).await?;
                if !profile.status.is_active() {
                    return Err(Error::NotActive);
                }
                let quote = self.quote(msisdn, code).await?;
                if quote.product.kind != crate::service::catalogue::ProductKind::AddOn {
                    return Err(Error::WrongProductKind);
                }
                let live = self.subscriptions(msisdn).await?;
                if live
                    .iter()
                    .any(|s| s.product.code == *code && s.end_period.is_none())
                {
                    return Err(Error::AlreadySubscribed);
                }
                Prompt {
                    name_zh: quote.product.name_zh.clone(),
                    fee: Some(quote.charge_now),
                    points: None,
                    rule_zh: quote.rule_zh,
                    action: action.clone(),
                    valid_minutes,
                }
            }
            PendingAction::Redeem(reward) => {
                let profile = self.profile(msisdn).await?;
                if !profile.status.is_active() {
                    return Err(Error::NotActive);
                }
                let code = reward.to_ascii_uppercase();
                let r = self
                    .rewards()
                    .await?
                    .into_iter()
                    .find(|r| r.code == code)
                    .ok_or(Error::UnknownReward)?;
                let have = self.points(msisdn).await?.balance;
                if have < r.cost {
                    return Err(Error::InsufficientPoints {
                        needed: r.cost.get(),
                        available: have.get(),
                    });
                }
                Prompt {
                    name_zh: r.name_zh.clone(),
                    fee: None,
                    points: Some(r.cost.get()),
                    rule_zh: format!("兑换将扣减 {} 积分,兑换后不可撤销。", r.cost),
                    action: action.clone(),
                    valid_minutes,
                }
            }
        };
        let action = match action {
            PendingAction::Redeem(r) => PendingAction::Redeem(r.to_ascii_uppercase()),
            other => other,
        };
        let stored = StoredPrompt {
            id: uuid::Uuid::new_v4().simple().to_string(),
            action,
            issued_ms: self.now_ms(),
        };
        let value = serde_json::to_string(&stored).map_err(|e| Error::Storage(e.to_string()))?;
        self.eph().put(&key(msisdn), &value, ttl).await?;
        Ok(prompt)
    }

    /// Applies the number's pending prompt, once. `take` is atomic, so a reply delivered twice,
    /// or two replies at once, apply it at most once.
    pub async fn confirm(&self, msisdn: &Msisdn) -> Result<Confirmed> {
        let Some(value) = self.eph().take(&key(msisdn)).await? else {
            return Err(Error::NoPendingConfirmation);
        };
        let stored: StoredPrompt =
            serde_json::from_str(&value).map_err(|e| Error::Storage(e.to_string()))?;
        if self.now_ms() - stored.issued_ms >= self.settings().confirm_ttl.as_millis() as i64 {
            return Err(Error::NoPendingConfirmation);
        }
        match stored.action {
            PendingAction::Subscribe(code) => {
                Ok(Confirmed::Subscribed(self.subscribe(msisdn, &code).await?))
            }
            PendingAction::Redeem(reward) => Ok(Confirmed::Redeemed(
                self.redeem(msisdn, &reward, &format!("sms:{}", stored.id))
                    .await?,
            )),
        }
    }

    /// Whether a prompt is waiting (the gateway words its help differently then).
    pub async fn pending_confirmation(&self, msisdn: &Msisdn) -> Result<Option<PendingAction>> {
        let Some(value) = self.eph().get(&key(msisdn)).await? else {
            return Ok(None);
        };
        let stored: StoredPrompt =
            serde_json::from_str(&value).map_err(|e| Error::Storage(e.to_string()))?;
        let live =
            self.now_ms() - stored.issued_ms < self.settings().confirm_ttl.as_millis() as i64;
        Ok(live.then_some(stored.action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;
    use chrono::Duration as D;

    fn edu10() -> PendingAction {
        PendingAction::Subscribe(ProductCode::parse("EDU10").unwrap())
    }

    #[tokio::test]
    async fn nothing_happens_until_confirmed_and_then_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        let p = t.ask_confirmation(&m, edu10()).await.unwrap();
        assert_eq!(p.fee, Some(Fen::yuan(10)));
        assert!(p.rule_zh.contains("退订"));
        assert!(
            t.subscriptions(&m).await.unwrap().is_empty(),
            "a prompt alone changes nothing"
        );
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(50));
        assert!(matches!(
            t.confirm(&m).await.unwrap(),
            Confirmed::Subscribed(_)
        ));
        assert!(
            matches!(t.confirm(&m).await, Err(Error::NoPendingConfirmation)),
            "single use"
        );
        assert_eq!(t.subscriptions(&m).await.unwrap().len(), 1);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(40));
    }

    #[tokio::test]
    async fn a_late_reply_changes_nothing() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        t.ask_confirmation(&m, edu10()).await.unwrap();
        t.clock.advance(D::minutes(10));
        assert!(t.pending_confirmation(&m).await.unwrap().is_none());
        assert!(matches!(
            t.confirm(&m).await,
            Err(Error::NoPendingConfirmation)
        ));
        assert!(t.subscriptions(&m).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_prompt_is_bound_to_its_number() {
        let t = TestHall::empty().await;
        let a = t.subscriber("13800138000", 5000).await;
        let b = t.subscriber("13900139000", 5000).await;
        t.ask_confirmation(&a, edu10()).await.unwrap();
        assert!(matches!(
            t.confirm(&b).await,
            Err(Error::NoPendingConfirmation)
        ));
        assert!(t.subscriptions(&b).await.unwrap().is_empty());
        t.confirm(&a).await.unwrap();
    }

    #[tokio::test]
    async fn a_newer_prompt_replaces_the_older() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        t.ask_confirmation(&m, edu10()).await.unwrap();
        t.ask_confirmation(
            &m,
            PendingAction::Subscribe(ProductCode::parse("EDU20").unwrap()),
        )
        .await
        .unwrap();
        let Confirmed::Subscribed(s) = t.confirm(&m).await.unwrap() else {
            panic!("expected a subscription")
        };
        assert_eq!(s.product.code.as_str(), "EDU20");
        assert_eq!(t.subscriptions(&m).await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_replies_apply_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        t.ask_confirmation(&m, edu10()).await.unwrap();
        let replies = (0..10).map(|_| {
            let (h, m) = (t.hall.clone(), m.clone());
            tokio::spawn(async move { h.confirm(&m).await })
        });
        let ok = futures::future::join_all(replies)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(_))))
            .count();
        assert_eq!(ok, 1);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(40));
    }

    #[tokio::test]
    async fn a_confirmed_redemption_burns_points_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.grant_points(&m, 2000, "测试积分", "t1").await.unwrap();
        let p = t
            .ask_confirmation(&m, PendingAction::Redeem("hf27".into()))
            .await
            .unwrap();
        assert_eq!(p.points, Some(1800));
        assert_eq!(
            t.points(&m).await.unwrap().balance.get(),
            2000,
            "a prompt alone burns nothing"
        );
        assert!(matches!(
            t.confirm(&m).await.unwrap(),
            Confirmed::Redeemed(_)
        ));
        assert!(matches!(
            t.confirm(&m).await,
            Err(Error::NoPendingConfirmation)
        ));
        assert_eq!(t.points(&m).await.unwrap().balance.get(), 200);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(27));
    }

    #[tokio::test]
    async fn doomed_orders_are_refused_before_asking() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        t.subscribe(&m, &ProductCode::parse("EDU10").unwrap())
            .await
            .unwrap();
        assert!(matches!(
            t.ask_confirmation(&m, edu10()).await,
            Err(Error::AlreadySubscribed)
        ));
        let plan = PendingAction::Subscribe(ProductCode::parse("GT128").unwrap());
        assert!(matches!(
            t.ask_confirmation(&m, plan).await,
            Err(Error::WrongProductKind)
        ));
        assert!(matches!(
            t.ask_confirmation(&m, PendingAction::Redeem("HF27".into()))
                .await,
            Err(Error::InsufficientPoints { .. })
        ));
    }
}
