//! Fixtures for tests and benchmarks of the contexts that build on the marketplace (feature
//! `fixtures`): an approved native-credit project, its issuance and a listing, made through the
//! same ledger and listing checks as production ones.

use std::sync::Arc;

use amanar_core::table::Table;
use chrono::Utc;

use crate::ledger::{Ledger, NewIssuance};
use crate::listings::{Listing, Listings, NewListing};
use crate::money::Money;
use crate::projects::{IssuanceType, Mechanism, Project, ProjectFields, Projects};
use crate::serial::{self, Standard, Vintage};

/// The fields of a native avoided-deforestation project called `name`, in `country`.
pub fn forest(name: &str, country: &str) -> ProjectFields {
    ProjectFields {
        name: name.into(),
        description: "Avoided deforestation in the highlands".into(),
        category: "forest".into(),
        project_type: "avoided forest conversion".into(),
        protocol: None,
        standard: Standard::Native,
        mechanism: Mechanism::Avoidance,
        issuance_type: IssuanceType::ExPost,
        country: country.into(),
        location: None,
        sdgs: vec![13],
        labels: vec![],
        permanence_years: Some(40),
        registry_project_id: None,
        registry_url: None,
    }
}

/// Stores `fields` as project `id` of `owner` (`USER#..` or `ORG#..`), approved.
pub async fn approved(
    table: &Arc<dyn Table>,
    id: &str,
    owner: &str,
    fields: ProjectFields,
) -> Project {
    let project = Project::approved_elsewhere(
        id.into(),
        owner.into(),
        fields,
        "user:usr_dev".into(),
        Utc::now(),
    );
    Projects::new(table.clone())
        .import_approved(&project, "fixture")
        .await
        .expect("the fixture project is stored");
    project
}

/// Issues `quantity` native 2023 credits of `project` as issuance `issuance_id` (serials
/// `AMC-<issuance_id>-1-<quantity>`, no buffer) into its owner's inventory, and lists them all
/// as `listing_id` at `price` per tonne.
pub async fn listed(
    table: &Arc<dyn Table>,
    project: &Project,
    issuance_id: &str,
    listing_id: &str,
    quantity: u64,
    price: Money,
) -> Listing {
    let now = Utc::now();
    Ledger::new(table.clone())
        .issue(NewIssuance {
            serial: serial::parse(Standard::Native, &format!("AMC-{issuance_id}-1-{quantity}"))
                .expect("a native serial block"),
            id: issuance_id.into(),
            project_id: project.id.clone(),
            vintage: Vintage::Year(2023),
            buffer: 0,
            inventory_owner: project.owner.clone(),
            issued_by: "user:usr_verifier".into(),
            issued_at: now,
        })
        .await
        .expect("the fixture issuance");
    Listings::new(table.clone())
        .create(NewListing {
            id: listing_id.into(),
            project_id: project.id.clone(),
            issuance_id: issuance_id.into(),
            seller: project.owner.clone(),
            standard: Standard::Native,
            vintage: Vintage::Year(2023),
            quantity,
            unit_price: price,
            actor: "user:usr_dev".into(),
            now,
        })
        .await
        .expect("the fixture listing")
}
