//! Reporting periods: a run of whole days, first and last day included.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest period a footprint may cover: a year, leap day included.
pub const MAX_DAYS: i64 = 366;

/// The days a footprint covers, both ends included (`2025-01-01` to `2025-12-31` is the year 2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// First day, `YYYY-MM-DD`.
    #[schema(value_type = String, example = "2025-01-01")]
    pub start: NaiveDate,
    /// Last day, included.
    #[schema(value_type = String, example = "2025-12-31")]
    pub end: NaiveDate,
}

impl Period {
    /// A period of 1 to [`MAX_DAYS`] days, or why not (a message for the `period` field).
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, String> {
        if end < start {
            return Err(format!("end ({end}) is before start ({start})"));
        }
        let days = self::days(start, end);
        if days > MAX_DAYS {
            return Err(format!(
                "covers {days} days; a footprint covers at most one year ({MAX_DAYS} days)"
            ));
        }
        Ok(Period { start, end })
    }

    /// Checks a period that came from the wire.
    pub fn validated(self) -> Result<Period, String> {
        Period::new(self.start, self.end)
    }

    pub fn days(&self) -> i64 {
        days(self.start, self.end)
    }

    /// Whether the two periods share at least one day.
    pub fn overlaps(&self, other: &Period) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

fn days(start: NaiveDate, end: NaiveDate) -> i64 {
    (end - start).num_days() + 1
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn period(start: &str, end: &str) -> Period {
        Period::new(date(start), date(end)).unwrap()
    }

    #[test]
    fn a_period_runs_from_its_first_to_its_last_day_inclusive() {
        assert_eq!(period("2024-01-01", "2024-12-31").days(), 366);
        assert_eq!(period("2025-03-01", "2025-03-01").days(), 1);
        assert!(Period::new(date("2025-01-02"), date("2025-01-01")).is_err());
        assert!(
            Period::new(date("2024-01-01"), date("2025-01-01"))
                .unwrap_err()
                .contains("367 days")
        );
    }

    #[test]
    fn periods_overlap_when_they_share_a_day() {
        let year = period("2025-01-01", "2025-12-31");
        assert!(year.overlaps(&period("2025-12-31", "2026-01-30")));
        assert!(year.overlaps(&period("2025-06-01", "2025-06-30")));
        assert!(!year.overlaps(&period("2026-01-01", "2026-12-31")));
        assert!(!year.overlaps(&period("2024-01-01", "2024-12-31")));
    }
}
