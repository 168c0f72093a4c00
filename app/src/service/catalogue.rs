//! The product catalogue: base plans (one at a time, per brand) and add-ons (any number).
use serde::Serialize;
use sqlx::AnyConnection;

use crate::domain::{Brand, Fen, Msisdn, ProductCode};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::store::reads::{Read, ReadRow};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProductKind {
    Plan,
    AddOn,
}

#[derive(Clone, Debug, Serialize)]
pub struct Product {
    pub code: ProductCode,
    pub kind: ProductKind,
    /// The brand for a plan (`gotone`…); the add-on family (`campus_wlan`, `data`…) otherwise.
    pub family: String,
    pub name_zh: String,
    pub name_en: String,
    pub monthly_fee: Fen,
    pub voice_minutes: i64,
    pub data_mb: i64,
    pub sms_count: i64,
    pub wlan_minutes: i64,
    pub description_zh: String,
    pub description_en: String,
}

impl Product {
    pub fn is_plan_of(&self, brand: Brand) -> bool {
        self.kind == ProductKind::Plan && self.family == brand.as_str()
    }
}

/// A product's columns as [`product_from_row`] reads them: a macro, so that the reads are
/// `concat!`ed at compile time rather than formatted on every page view.
macro_rules! product_columns {
    () => {
        "code, kind, family, name_zh, name_en, monthly_fee, voice_minutes, data_mb, \
         sms_count, wlan_minutes, description_zh, description_en"
    };
}

pub(crate) const PRODUCT_COLUMNS: &str = product_columns!();

pub(crate) fn product_from_row(r: &ReadRow, offset: usize) -> Result<Product> {
    let kind: String = r.try_get(offset + 1)?;
    Ok(Product {
        code: ProductCode::parse(&r.try_get::<String, _>(offset)?)
            .map_err(|_| Error::Storage("unreadable product code".into()))?,
        kind: if kind == "plan" {
            ProductKind::Plan
        } else {
            ProductKind::AddOn
        },
        family: r.try_get(offset + 2)?,
        name_zh: r.try_get(offset + 3)?,
        name_en: r.try_get(offset + 4)?,
        monthly_fee: Fen::new(r.try_get(offset + 5)?),
        voice_minutes: r.try_get(offset + 6)?,
        data_mb: r.try_get(offset + 7)?,
        sms_count: r.try_get(offset + 8)?,
        wlan_minutes: r.try_get(offset + 9)?,
        description_zh: r.try_get(offset + 10)?,
        description_en: r.try_get(offset + 11)?,
    })
}

pub(crate) async fn load_product(conn: &mut AnyConnection, code: &ProductCode) -> Result<Product> {
    product_from(&product_read(code).fetch(conn).await?)
}

/// The read behind [`load_product`], for a [`crate::store::reads::Reader`].
pub(crate) fn product_read(code: &ProductCode) -> Read {
    Read::new(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products WHERE code = $1 AND active = 1"
    ))
    .text(code.as_str())
    .at_most_one()
}

/// A number's current plan as [`load_product`] reads it, without first reading the number's
/// profile: for a batch ([`crate::store::reads`]).
pub(crate) fn plan_read(msisdn: &Msisdn) -> Read {
    Read::new(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products \
         WHERE code = (SELECT plan_code FROM subscribers WHERE msisdn = $1) AND active = 1"
    ))
    .text(msisdn.as_str())
    .at_most_one()
}

/// The product of [`load_product`] or [`plan_read`].
pub(crate) fn product_from(rows: &[ReadRow]) -> Result<Product> {
    product_from_row(rows.first().ok_or(Error::UnknownProduct)?, 0)
}

impl Hall {
    /// Every product on sale, plans first, in catalogue order.
    pub async fn catalogue(&self) -> Result<Vec<Product>> {
        let rows = self
            .db()
            .read(Read::new(concat!(
                "SELECT ",
                product_columns!(),
                " FROM products WHERE active = 1 ORDER BY kind DESC, sort_order, code"
            )))
            .await?;
        rows.iter().map(|r| product_from_row(r, 0)).collect()
    }

    pub async fn product(&self, code: &ProductCode) -> Result<Product> {
        product_from(&self.db().read(product_read(code)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn the_campus_packs_are_on_sale() {
        let t = TestHall::empty().await;
        let all = t.catalogue().await.unwrap();
        assert_eq!(all[0].kind, ProductKind::Plan);
        for (code, fee, hours) in [("EDU10", 10, 40), ("EDU20", 20, 100), ("EDU40", 40, 250)] {
            let p = t.product(&ProductCode::parse(code).unwrap()).await.unwrap();
            assert_eq!(p.kind, ProductKind::AddOn);
            assert_eq!(p.monthly_fee, Fen::yuan(fee));
            assert_eq!(p.wlan_minutes, hours * 60);
        }
        let gt88 = t
            .product(&ProductCode::parse("gt88").unwrap())
            .await
            .unwrap();
        assert!(gt88.is_plan_of(Brand::GoTone) && !gt88.is_plan_of(Brand::MZone));
        assert!(matches!(
            t.product(&ProductCode::parse("NOPE").unwrap()).await,
            Err(Error::UnknownProduct)
        ));
    }
}
