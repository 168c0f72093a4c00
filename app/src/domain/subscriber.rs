use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::Fen;

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal / $zh:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// The three consumer brands.
    Brand {
        GoTone = "gotone" / "全球通",
        MZone = "mzone" / "动感地带",
        Easyown = "easyown" / "神州行",
    }
);

text_enum!(
    Status {
        Active = "active" / "正常",
        SuspendedByRequest = "suspended_request" / "申请停机",
        SuspendedArrears = "suspended_arrears" / "欠费停机",
    }
);

text_enum!(
    /// VIP tier from the last twelve months of billed spend.
    Tier {
        Diamond = "diamond" / "钻石卡",
        Gold = "gold" / "金卡",
        Silver = "silver" / "银卡",
        Standard = "standard" / "普通",
    }
);

impl Tier {
    pub fn from_annual_spend(spend: Fen) -> Tier {
        match spend.get() {
            s if s >= 300_000 => Tier::Diamond,
            s if s >= 150_000 => Tier::Gold,
            s if s >= 66_600 => Tier::Silver,
            _ => Tier::Standard,
        }
    }

    /// Points per whole yuan billed, in tenths (diamond ×1.5 = 15), so that earning stays integer.
    pub fn points_factor_tenths(self) -> i64 {
        match self {
            Tier::Diamond => 15,
            Tier::Gold => 12,
            Tier::Silver | Tier::Standard => 10,
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Tier::Diamond => "Diamond",
            Tier::Gold => "Gold",
            Tier::Silver => "Silver",
            Tier::Standard => "Standard",
        }
    }
}

impl Brand {
    pub fn en(self) -> &'static str {
        match self {
            Brand::GoTone => "GoTone",
            Brand::MZone => "M-Zone",
            Brand::Easyown => "Easyown",
        }
    }
}

impl Status {
    pub fn en(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::SuspendedByRequest => "Suspended at your request",
            Status::SuspendedArrears => "Suspended for arrears",
        }
    }

    /// A suspended subscriber may still query and top up, but not change services.
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_thresholds() {
        assert_eq!(Tier::from_annual_spend(Fen::yuan(3000)), Tier::Diamond);
        assert_eq!(Tier::from_annual_spend(Fen::new(299_999)), Tier::Gold);
        assert_eq!(Tier::from_annual_spend(Fen::yuan(1500)), Tier::Gold);
        assert_eq!(Tier::from_annual_spend(Fen::yuan(666)), Tier::Silver);
        assert_eq!(Tier::from_annual_spend(Fen::new(66_599)), Tier::Standard);
    }

    #[test]
    fn db_text_round_trips() {
        for b in Brand::ALL {
            assert_eq!(Brand::from_db(b.as_str()), Some(*b));
        }
        for s in Status::ALL {
            assert_eq!(Status::from_db(s.as_str()), Some(*s));
        }
        for t in Tier::ALL {
            assert_eq!(Tier::from_db(t.as_str()), Some(*t));
        }
    }
}
