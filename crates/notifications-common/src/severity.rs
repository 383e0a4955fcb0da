use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How important a notification is. The order of the variants is the upstream rank order:
/// `critical` (rank 0) is the most severe, `low` (rank 3) the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NotificationSeverity {
    Critical,
    High,
    #[default]
    Normal,
    Low,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of critical, high, normal, low")]
pub struct UnknownSeverity(pub String);

impl NotificationSeverity {
    /// All severities, most severe first (upstream's `notificationSeverities`).
    pub const ALL: [Self; 4] = [Self::Critical, Self::High, Self::Normal, Self::Low];

    /// 0 for the most severe, 3 for the least.
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }

    /// True when `self` is at least as severe as `other`.
    pub fn at_least(self, other: Self) -> bool {
        self.rank() <= other.rank()
    }

    /// The severities at least as severe as `minimum` (what `minimumSeverity` selects).
    pub fn at_least_as_severe_as(minimum: Self) -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(move |s| s.at_least(minimum))
    }
}

impl fmt::Display for NotificationSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive, as upstream lower-cases stored severities. The HTTP API itself is strict
/// (serde only accepts the lower-case names).
impl FromStr for NotificationSeverity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_orders_most_severe_first() {
        let ranks: Vec<u8> = NotificationSeverity::ALL.iter().map(|s| s.rank()).collect();
        assert_eq!(ranks, [0, 1, 2, 3]);
        assert!(NotificationSeverity::Critical.at_least(NotificationSeverity::High));
        assert!(!NotificationSeverity::Low.at_least(NotificationSeverity::Normal));
    }

    #[test]
    fn minimum_severity_selects_at_least_as_severe() {
        let high: Vec<_> =
            NotificationSeverity::at_least_as_severe_as(NotificationSeverity::High).collect();
        assert_eq!(
            high,
            [NotificationSeverity::Critical, NotificationSeverity::High]
        );
        assert_eq!(
            NotificationSeverity::at_least_as_severe_as(NotificationSeverity::Low).count(),
            4
        );
    }

    #[test]
    fn wire_names_are_strict_lower_case() {
        assert_eq!(
            serde_json::to_string(&NotificationSeverity::High).unwrap(),
            "\"high\""
        );
        assert!(serde_json::from_str::<NotificationSeverity>("\"urgent\"").is_err());
        assert!(serde_json::from_str::<NotificationSeverity>("\"HIGH\"").is_err());
        assert_eq!(
            "HIGH".parse::<NotificationSeverity>().unwrap(),
            NotificationSeverity::High
        );
    }
}
