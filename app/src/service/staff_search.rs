//! Customer care finds a subscriber (SPEC §5): agents by number, supervisors also by name.
//! What comes back is always masked, and every search is audited before it is answered.
use crate::domain::Msisdn;
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::audit::{self, action, AuditRecord, Outcome};
use crate::service::staff::{authorize, Role, StaffMember};
use crate::service::subscribers::{load_profile, Profile};

/// At most this many matches by name: a search, not an export.
const MAX_BY_NAME: i64 = 20;

/// What a staff member typed into the search box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriberQuery {
    Number(Msisdn),
    Name(String),
}

impl SubscriberQuery {
    /// A number when it parses as one (spaces, dashes and +86 allowed), else a name.
    pub fn parse(input: &str) -> Option<Self> {
        let t = input.trim();
        if t.is_empty() || t.chars().count() > 32 {
            return None;
        }
        let digits_like = t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '+'));
        if digits_like {
            return Msisdn::parse(t).ok().map(Self::Number);
        }
        if t.chars().any(|c| c.is_control() || matches!(c, '%' | '_')) {
            return None;
        }
        Some(Self::Name(t.to_owned()))
    }
}

impl Hall {
    /// Masked profiles matching `query`. By number: agents and supervisors. By name (exact, or
    /// a family name followed by `*`): supervisors only. Admins never look at customers.
    pub async fn find_subscribers(
        &self,
        staff: &StaffMember,
        query: &SubscriberQuery,
        client_addr: &str,
    ) -> Result<Vec<Profile>> {
        let mut rec = AuditRecord::new(action::CUSTOMER_READ, Outcome::Ok, client_addr)
            .staff(staff)
            .detail(match query {
                SubscriberQuery::Number(_) => "search by number",
                SubscriberQuery::Name(_) => "search by name",
            });
        if let SubscriberQuery::Number(m) = query {
            rec = rec.msisdn(m);
        }
        let allowed: &[Role] = match query {
            SubscriberQuery::Number(_) => &[Role::Agent, Role::Supervisor],
            SubscriberQuery::Name(_) => &[Role::Supervisor],
        };
        let mut conn = self.db().pool().acquire().await?;
        if let Err(e) = authorize(&mut conn, staff, allowed).await {
            drop(conn);
            self.audit_refusal(rec, &e).await;
            return Err(e);
        }
        audit::append(&mut conn, self.now_ms(), &rec).await?;
        let found = match query {
            SubscriberQuery::Number(m) => match load_profile(&mut conn, m).await {
                Ok(p) => vec![p],
                Err(Error::UnknownSubscriber) => vec![],
                Err(e) => return Err(e),
            },
            SubscriberQuery::Name(name) => {
                let pattern = match name.strip_suffix('*') {
                    Some(family) => format!("{}%", family.trim()),
                    None => name.clone(),
                };
                let rows = sqlx::query(
                    "SELECT msisdn FROM subscribers WHERE name LIKE $1 ORDER BY msisdn LIMIT $2",
                )
                .bind(pattern)
                .bind(MAX_BY_NAME)
                .fetch_all(&mut *conn)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let m: String = sqlx::Row::try_get(&r, 0)?;
                    let m = Msisdn::parse(&m)
                        .map_err(|_| Error::Storage("unreadable msisdn in subscribers".into()))?;
                    out.push(load_profile(&mut conn, &m).await?);
                }
                out
            }
        };
        // Staff numbers are not customers to act for; they are still found, marked by the
        // refusal that acting would give.
        Ok(found.iter().map(Profile::masked).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::staff::tests::make_staff;
    use crate::testing::TestHall;

    #[test]
    fn queries_parse_as_numbers_or_names() {
        assert!(matches!(
            SubscriberQuery::parse(" 138 0013 8000 "),
            Some(SubscriberQuery::Number(_))
        ));
        assert_eq!(
            SubscriberQuery::parse("张*"),
            Some(SubscriberQuery::Name("张*".into()))
        );
        assert_eq!(SubscriberQuery::parse("12345"), None);
        assert_eq!(SubscriberQuery::parse(""), None);
        assert_eq!(SubscriberQuery::parse("a%b"), None);
    }

    #[tokio::test]
    async fn agents_search_by_number_supervisors_by_name_and_all_is_masked() {
        let h = TestHall::empty().await;
        let m = h.subscriber("13800138000", 100).await;
        let agent = make_staff(&h, "agent7", Role::Agent, None).await;
        let sup = make_staff(&h, "sup7", Role::Supervisor, None).await;
        let admin = make_staff(&h, "admin7", Role::Admin, None).await;
        let by_number = SubscriberQuery::Number(m.clone());
        let found = h
            .find_subscribers(&agent, &by_number, "10.0.0.1")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            found[0].name.contains('*'),
            "name masked: {}",
            found[0].name
        );
        assert!(found[0].id_card.contains("****"));
        let name =
            SubscriberQuery::parse(&format!("{}*", found[0].name.chars().next().unwrap())).unwrap();
        assert!(matches!(
            h.find_subscribers(&agent, &name, "10.0.0.1").await,
            Err(Error::Forbidden)
        ));
        assert_eq!(
            h.find_subscribers(&sup, &name, "10.0.0.1")
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            h.find_subscribers(&admin, &by_number, "10.0.0.1").await,
            Err(Error::Forbidden)
        ));
        let unknown = SubscriberQuery::parse("13999999999").unwrap();
        assert!(h
            .find_subscribers(&agent, &unknown, "10.0.0.1")
            .await
            .unwrap()
            .is_empty());
    }
}
