//! The `0000` menu of the SMS business hall: the monthly add-ons a subscriber can cancel, and
//! the list as it was shown, so that `TD1,3` means the items the subscriber read — even after
//! one of them has been cancelled and the live list has shifted.
use crate::domain::{Msisdn, ProductCode};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::subscriptions::Subscription;

fn key(m: &Msisdn) -> String {
    format!("menu:{}", m.as_str())
}

impl Hall {
    /// The add-ons that can still be cancelled (live and not cancelled already), in the order
    /// they were ordered; remembered as shown for the confirmation window.
    pub async fn show_cancel_menu(&self, msisdn: &Msisdn) -> Result<Vec<Subscription>> {
        let items: Vec<Subscription> = self
            .subscriptions(msisdn)
            .await?
            .into_iter()
            .filter(|s| s.end_period.is_none())
            .collect();
        let codes: Vec<&str> = items.iter().map(|s| s.product.code.as_str()).collect();
        let value = serde_json::to_string(&codes).map_err(|e| Error::Storage(e.to_string()))?;
        self.eph()
            .put(&key(msisdn), &value, self.settings().confirm_ttl)
            .await?;
        Ok(items)
    }

    /// The codes of the menu last shown to the number, numbered from 1; when none was shown
    /// recently, the menu as it would be shown now.
    pub async fn cancel_menu_codes(&self, msisdn: &Msisdn) -> Result<Vec<ProductCode>> {
        if let Some(v) = self.eph().get(&key(msisdn)).await? {
            let codes: Vec<String> =
                serde_json::from_str(&v).map_err(|e| Error::Storage(e.to_string()))?;
            return Ok(codes
                .iter()
                .filter_map(|c| ProductCode::parse(c).ok())
                .collect());
        }
        Ok(self
            .show_cancel_menu(msisdn)
            .await?
            .into_iter()
            .map(|s| s.product.code)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::ProductCode;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn numbers_keep_meaning_what_was_shown() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 10_000).await;
        for c in ["EDU10", "LL10", "JTCL"] {
            t.subscribe(&m, &ProductCode::parse(c).unwrap())
                .await
                .unwrap();
        }
        let shown = t.show_cancel_menu(&m).await.unwrap();
        assert_eq!(shown.len(), 3);
        t.cancel(&m, &ProductCode::parse("EDU10").unwrap())
            .await
            .unwrap();
        let codes = t.cancel_menu_codes(&m).await.unwrap();
        assert_eq!(
            codes[1].as_str(),
            "LL10",
            "item 2 is still what the menu showed as 2"
        );
        // A fresh menu no longer lists what was cancelled.
        assert_eq!(t.show_cancel_menu(&m).await.unwrap().len(), 2);
    }
}
