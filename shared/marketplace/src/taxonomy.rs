//! The project taxonomy: OffsetsDB's project types with their categories, and its protocol ids.
//!
//! Both tables are derived from OffsetsDB's configuration (MIT) by `infra/data/build_offsets.py`
//! and compiled in (`data/project-types.csv`, `data/protocols.csv`). They are small (80 types, 251
//! protocols) and parsed once, borrowing from the compiled-in text.

use std::sync::LazyLock;

/// A project type (`afforestation/reforestation`) and the category it belongs to (`forest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectType {
    pub key: &'static str,
    pub name: &'static str,
    pub category: &'static str,
}

/// A methodology or protocol (`acm0002`), its programme (`cdm`) and its category
/// (`renewable-energy`; `unknown` where OffsetsDB gives none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    pub id: &'static str,
    pub program: &'static str,
    pub category: &'static str,
}

/// Rows of a compiled-in three-column table (the script writes no quoted fields; a test checks).
fn rows(text: &'static str) -> impl Iterator<Item = [&'static str; 3]> {
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|line| {
        let mut fields = line.splitn(3, ',');
        let mut next = || fields.next().unwrap_or_default();
        [next(), next(), next()]
    })
}

static TYPES: LazyLock<Vec<ProjectType>> = LazyLock::new(|| {
    rows(include_str!("../data/project-types.csv"))
        .map(|[key, name, category]| ProjectType {
            key,
            name,
            category,
        })
        .collect()
});

static PROTOCOLS: LazyLock<Vec<Protocol>> = LazyLock::new(|| {
    rows(include_str!("../data/protocols.csv"))
        .map(|[id, program, category]| Protocol {
            id,
            program,
            category,
        })
        .collect()
});

/// Every project type, by key.
pub fn project_types() -> &'static [ProjectType] {
    &TYPES
}

pub fn project_type(key: &str) -> Option<&'static ProjectType> {
    TYPES.iter().find(|t| t.key == key)
}

pub fn protocol(id: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.id == id)
}

/// The categories, sorted.
pub fn categories() -> Vec<&'static str> {
    let mut categories: Vec<&str> = TYPES.iter().map(|t| t.category).collect();
    categories.sort_unstable();
    categories.dedup();
    categories
}

/// Categories whose carbon can return to the atmosphere (fire, harvest, land-use change), so that
/// a buffer share is withheld at issuance by default.
pub const NON_PERMANENT: [&str; 2] = ["forest", "land-use"];

pub fn is_non_permanent(category: &str) -> bool {
    NON_PERMANENT.contains(&category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_offsetsdb_types_categories_and_protocols() {
        assert_eq!(project_types().len(), 80);
        assert_eq!(PROTOCOLS.len(), 251);
        let forest = project_type("afforestation/reforestation").unwrap();
        assert_eq!(forest.category, "forest");
        assert_eq!(forest.name, "Afforestation + Reforestation");
        assert_eq!(protocol("acm0002").unwrap().category, "renewable-energy");
        assert!(categories().contains(&"biomass-cdr"));
        for category in NON_PERMANENT {
            assert!(categories().contains(&category), "{category}");
        }
    }

    #[test]
    fn every_row_has_three_unquoted_fields() {
        for text in [
            include_str!("../data/project-types.csv"),
            include_str!("../data/protocols.csv"),
        ] {
            for line in text.lines() {
                assert_eq!(line.split(',').count(), 3, "{line}");
                assert!(!line.contains('"'), "{line}");
            }
        }
    }
}
