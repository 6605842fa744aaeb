//! Ratings from carbon-credit rating agencies, recorded by admins on approved projects.
//!
//! Each agency grades on its own ordinal scale, best grade first. BeZero's and Sylvera's scales
//! (`AAA`, `AA`, `A`, `BBB`, `BB`, `B`, `C`, `D`) are built in; any other agency's rating (Calyx
//! Global, Renoster, ...) names its scale as that agency publishes it, since their scales have
//! changed over the years and the platform should not pin one. A rating's grade must be on
//! its scale, so ratings of one agency compare, and its rank gives the catalogue's rating filter
//! (`ratingAgency`, `minRating`) and sort (the best rating as a share of its scale).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::projects::{FieldProblem, problem};

use chrono::{DateTime, NaiveDate, Utc};

/// The most ratings one project holds.
pub const MAX_RATINGS: usize = 50;

/// The scales of the agencies the platform knows, best grade first.
const SCALES: &[(&str, &[&str])] = &[
    ("bezero", &["AAA", "AA", "A", "BBB", "BB", "B", "C", "D"]),
    ("sylvera", &["AAA", "AA", "A", "BBB", "BB", "B", "C", "D"]),
];

/// The built-in scale of a known agency.
pub fn scale_of(agency: &str) -> Option<&'static [&'static str]> {
    SCALES.iter().find(|(a, _)| *a == agency).map(|(_, s)| *s)
}

/// The rank (0 is best) of `grade` on a known agency's scale.
pub fn rank_of(agency: &str, grade: &str) -> Option<usize> {
    scale_of(agency)?.iter().position(|g| *g == grade)
}

/// What a rating applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RatingScope {
    Project,
    Vintage,
}

/// One agency rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgencyRating {
    pub id: String,
    /// Lower-case agency name: `bezero`, `sylvera`, or another (`calyx`, `renoster`).
    pub agency: String,
    /// The agency's grades, best first.
    pub scale: Vec<String>,
    pub grade: String,
    /// When the agency published it.
    pub rated_on: NaiveDate,
    pub scope: RatingScope,
    /// The vintage year a `vintage`-scoped rating applies to.
    pub vintage: Option<i32>,
    pub source_url: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// The ratings in force: for each agency and what it rated (the project, or one vintage), the one
/// it published last (then the one recorded last, then the greater id, so the choice is total). An
/// agency's downgrade replaces its earlier grade; the earlier grades stay in `agencyRatings`.
pub fn current(ratings: &[AgencyRating]) -> impl Iterator<Item = &AgencyRating> {
    ratings.iter().filter(move |r| {
        !ratings.iter().any(|later| {
            later.agency == r.agency
                && later.scope == r.scope
                && later.vintage == r.vintage
                && (later.rated_on, later.recorded_at, &later.id)
                    > (r.rated_on, r.recorded_at, &r.id)
        })
    })
}

/// The ratings the catalogue filters and sorts a project by: for each agency, its project rating
/// in force; an agency that rated only vintages counts with its ratings in force of the vintages
/// on offer (`vintages`). So a project-level downgrade is never outvoted by a vintage's better
/// grade, and a rating of a vintage nobody sells says nothing about what is for sale.
pub fn counted<'a>(ratings: &'a [AgencyRating], vintages: &[i32]) -> Vec<&'a AgencyRating> {
    let in_force: Vec<&AgencyRating> = current(ratings).collect();
    in_force
        .iter()
        .copied()
        .filter(|r| match (r.scope, r.vintage) {
            (RatingScope::Project, _) => true,
            (RatingScope::Vintage, vintage) => {
                vintage.is_some_and(|year| vintages.contains(&year))
                    && !in_force
                        .iter()
                        .any(|p| p.agency == r.agency && p.scope == RatingScope::Project)
            }
        })
        .collect()
}

/// The first publication date a rating may carry.
const EARLIEST_RATING: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");

impl AgencyRating {
    /// Whether `other` states the same grading (who recorded it and when aside): a retry of the
    /// same request, not a new rating under a reused id.
    pub fn same_grading(&self, other: &AgencyRating) -> bool {
        (
            &self.agency,
            &self.scale,
            &self.grade,
            self.rated_on,
            self.scope,
            self.vintage,
            &self.source_url,
        ) == (
            &other.agency,
            &other.scale,
            &other.grade,
            other.rated_on,
            other.scope,
            other.vintage,
            &other.source_url,
        )
    }

    /// The grade's rank on its scale, 0 being the best.
    pub fn rank(&self) -> Option<usize> {
        self.scale.iter().position(|g| *g == self.grade)
    }

    /// The grade as thousandths of its scale: 1000 for the best grade, 0 for the worst.
    pub fn score(&self) -> Option<i64> {
        let rank = self.rank()? as i64;
        let steps = (self.scale.len() as i64 - 1).max(1);
        Some(1000 - rank * 1000 / steps)
    }
}

/// A rating as an admin sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRating {
    #[schema(example = "bezero")]
    pub agency: String,
    /// Required for an agency the platform does not know: its grades, best first.
    pub scale: Option<Vec<String>>,
    #[schema(example = "A")]
    pub grade: String,
    pub rated_on: NaiveDate,
    pub scope: RatingScope,
    pub vintage: Option<i32>,
    #[schema(example = "https://bezerocarbon.com/ratings/")]
    pub source_url: String,
}

/// A rating's problems, each naming its field. `today` bounds the publication date: a rating
/// dated in the future would stay in force over every real one published before that date.
pub fn check(new: &NewRating, today: NaiveDate) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if !(EARLIEST_RATING..=today).contains(&new.rated_on) {
        problems.push(problem(
            "ratedOn",
            format!("must be a date from {EARLIEST_RATING} to today ({today})"),
        ));
    }
    let agency_ok = !new.agency.is_empty()
        && new.agency.len() <= 40
        && new
            .agency
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !agency_ok {
        problems.push(problem(
            "agency",
            "must be 1 to 40 lower-case letters, digits or hyphens (bezero, sylvera, calyx)",
        ));
    }
    match (scale_of(&new.agency), &new.scale) {
        (Some(known), Some(given))
            if given.iter().map(String::as_str).ne(known.iter().copied()) =>
        {
            problems.push(problem(
                "scale",
                format!("{}'s scale is {}", new.agency, known.join(", ")),
            ));
        }
        (Some(known), _) => {
            if !known.contains(&new.grade.as_str()) {
                problems.push(problem(
                    "grade",
                    format!("must be one of {}", known.join(", ")),
                ));
            }
        }
        (None, None) => problems.push(problem(
            "scale",
            "name the agency's grades, best first, for an agency the platform does not know",
        )),
        (None, Some(scale)) => {
            let mut sorted = scale.clone();
            sorted.sort();
            sorted.dedup();
            let grades_ok = scale
                .iter()
                .all(|g| !g.is_empty() && g.len() <= 10 && crate::projects::plain(g, false));
            if !(2..=20).contains(&scale.len()) || sorted.len() != scale.len() || !grades_ok {
                problems.push(problem(
                    "scale",
                    "must be 2 to 20 distinct grades of at most 10 characters",
                ));
            } else if !scale.contains(&new.grade) {
                problems.push(problem("grade", "must be one of the scale's grades"));
            }
        }
    }
    match (new.scope, new.vintage) {
        (RatingScope::Vintage, None) => {
            problems.push(problem("vintage", "a vintage rating names its year"))
        }
        (RatingScope::Project, Some(_)) => {
            problems.push(problem("vintage", "only a vintage rating names a year"))
        }
        (_, Some(year)) if !(1990..=2100).contains(&year) => {
            problems.push(problem("vintage", "must be a year from 1990 to 2100"))
        }
        _ => {}
    }
    if !crate::projects::is_https_url(&new.source_url, 2000) {
        problems.push(problem(
            "sourceUrl",
            "must be an https URL of at most 2,000 ASCII characters naming a host, without user info",
        ));
    }
    problems
}

impl NewRating {
    /// The rating to store, once [`check`] passed.
    pub fn into_rating(self, id: String, by: &str, at: DateTime<Utc>) -> AgencyRating {
        let scale = match scale_of(&self.agency) {
            Some(known) => known.iter().map(|g| (*g).to_owned()).collect(),
            None => self.scale.unwrap_or_default(),
        };
        AgencyRating {
            id,
            agency: self.agency,
            scale,
            grade: self.grade,
            rated_on: self.rated_on,
            scope: self.scope,
            vintage: self.vintage,
            source_url: self.source_url,
            recorded_by: by.to_owned(),
            recorded_at: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(agency: &str, grade: &str, scale: Option<Vec<&str>>) -> NewRating {
        NewRating {
            agency: agency.into(),
            scale: scale.map(|s| s.into_iter().map(String::from).collect()),
            grade: grade.into(),
            rated_on: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            scope: RatingScope::Project,
            vintage: None,
            source_url: "https://example.org/r/1".into(),
        }
    }

    #[test]
    fn known_agencies_grade_on_their_own_scale() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert!(check(&rating("bezero", "BBB", None), today).is_empty());
        assert_eq!(
            check(&rating("bezero", "A+", None), today)[0].field,
            "grade"
        );
        assert_eq!(
            check(&rating("acme", "gold", None), today)[0].field,
            "scale"
        );
        assert!(check(&rating("acme", "gold", Some(vec!["gold", "silver"])), today).is_empty());
        // A date in the future would keep its grade in force over every real later rating.
        let mut dated = rating("bezero", "AAA", None);
        for (year, month, day) in [(9999, 12, 31), (2026, 12, 2), (1999, 12, 31)] {
            dated.rated_on = NaiveDate::from_ymd_opt(year, month, day).unwrap();
            assert_eq!(
                check(&dated, today)[0].field,
                "ratedOn",
                "{}",
                dated.rated_on
            );
        }
        dated.rated_on = today;
        assert!(check(&dated, today).is_empty());
        let stored = rating("bezero", "AAA", None).into_rating("r".into(), "user:a", Utc::now());
        assert_eq!(stored.score(), Some(1000));
        let stored = rating("bezero", "D", None).into_rating("r".into(), "user:a", Utc::now());
        assert_eq!(stored.score(), Some(0));
        assert_eq!(rank_of("sylvera", "A"), Some(2));
    }

    #[test]
    fn an_agencys_latest_rating_of_the_same_thing_is_the_one_in_force() {
        let at = Utc::now();
        let made = |id: &str, agency: &str, grade: &str, year: i32, vintage: Option<i32>| {
            let mut new = rating(agency, grade, None);
            new.rated_on = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            if vintage.is_some() {
                new.scope = RatingScope::Vintage;
                new.vintage = vintage;
            }
            new.into_rating(id.into(), "user:a", at)
        };
        let ratings = vec![
            made("1", "bezero", "AA", 2022, None),
            made("2", "bezero", "B", 2024, None),
            made("3", "bezero", "A", 2021, Some(2019)),
            made("4", "sylvera", "A", 2020, None),
        ];
        let in_force: Vec<&str> = current(&ratings).map(|r| r.id.as_str()).collect();
        assert_eq!(in_force, ["2", "3", "4"]);
        // BeZero's project downgrade (B) is what the catalogue counts, not its 2019 vintage's A.
        let ids = |counted: Vec<&AgencyRating>| -> Vec<String> {
            counted.into_iter().map(|r| r.id.clone()).collect()
        };
        assert_eq!(ids(counted(&ratings, &[2019])), ["2", "4"]);
        // An agency that rated only vintages counts with the vintages on offer.
        let vintages_only = vec![
            made("5", "calyx", "A", 2022, Some(2019)),
            made("6", "calyx", "C", 2022, Some(2021)),
        ];
        assert_eq!(ids(counted(&vintages_only, &[2021])), ["6"]);
        assert!(counted(&vintages_only, &[2015]).is_empty());
    }
}
