//! From an issuance request to what the ledger writes: the serial block checked against the
//! project, and the buffer share computed.
//!
//! A request for a registry standard carries the registry's serial block. Its quantity must be
//! `end - start + 1`, and the project id and vintage it states (where the format carries them) must
//! be the project's. A `NATIVE` request carries no serial block: the platform writes
//! `AMC-<issuanceId>-1-<quantity>`. Every refusal names the field at fault, so the API's 422 says
//! which.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::ledger::NewIssuance;
use crate::serial::{self, NATIVE_PREFIX, Standard, Vintage, same_project};
use crate::taxonomy;

/// The facts of a project that issuance checks against.
#[derive(Debug, Clone)]
pub struct ProjectFacts {
    pub id: String,
    pub standard: Standard,
    /// The registry's project id (`VCS1340`), for registry standards.
    pub registry_project_id: Option<String>,
    pub category: String,
    /// Whose inventory receives the credits (`USER#<id>` or `ORG#<id>`).
    pub owner: String,
}

/// What a verifier or admin asks to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub vintage: Vintage,
    pub quantity: u64,
    pub serial_block: Option<String>,
}

/// The most credits one issuance may hold (Verra's largest issuances are a few million).
pub const MAX_QUANTITY: u64 = 1_000_000_000;

/// The share withheld into the buffer pool for non-permanent categories, in whole percent, per
/// standard. A standard absent from the map uses the default; a share of 0 withholds nothing
/// (for a registry that already withheld its buffer before the block reached this platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferPolicy {
    pub default_percent: u8,
    pub per_standard: BTreeMap<Standard, u8>,
}

impl Default for BufferPolicy {
    /// 20% for every standard: a platform default, not a registry's figure (Verra's AFOLU
    /// non-permanence risk tool gives 10 to 60% per project). Deployments set their own.
    fn default() -> Self {
        Self {
            default_percent: 20,
            per_standard: BTreeMap::new(),
        }
    }
}

impl BufferPolicy {
    /// Parses `VCS=20,ACR=18,NATIVE=25` (each share 0 to 100) over the default.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut policy = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (standard, percent) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: write STANDARD=PERCENT"))?;
            let standard = Standard::parse(standard.trim())
                .ok_or_else(|| format!("{standard:?} is not a standard"))?;
            let percent: u8 = percent
                .trim()
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("{percent:?} is not a share from 0 to 100"))?;
            policy.per_standard.insert(standard, percent);
        }
        Ok(policy)
    }

    pub fn percent(&self, standard: Standard) -> u8 {
        self.per_standard
            .get(&standard)
            .copied()
            .unwrap_or(self.default_percent)
    }

    /// The credits withheld from `quantity` of a project of `category`: the share, rounded up
    /// (a buffer is never short by a rounding), for non-permanent categories only.
    pub fn withheld(&self, standard: Standard, category: &str, quantity: u64) -> u64 {
        if !taxonomy::is_non_permanent(category) {
            return 0;
        }
        let percent = u128::from(self.percent(standard));
        (u128::from(quantity) * percent).div_ceil(100) as u64
    }
}

/// A refused request, naming the field at fault (`serialBlock.end`, `quantity`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct IssueError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> IssueError {
    IssueError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a request against its project and builds the ledger's issuance.
pub fn prepare(
    project: &ProjectFacts,
    request: &IssueRequest,
    policy: &BufferPolicy,
    issuance_id: &str,
    issued_by: &str,
    issued_at: DateTime<Utc>,
) -> Result<NewIssuance, IssueError> {
    if request.quantity == 0 || request.quantity > MAX_QUANTITY {
        return Err(refuse(
            "quantity",
            format!("must be from 1 to {MAX_QUANTITY}"),
        ));
    }
    let block = match (project.standard, request.serial_block.as_deref()) {
        (Standard::Native, Some(_)) => {
            return Err(refuse(
                "serialBlock",
                "credits issued here get the platform's serials; send no serialBlock for a NATIVE project",
            ));
        }
        (Standard::Native, None) => serial::parse(
            Standard::Native,
            &format!("{NATIVE_PREFIX}-{issuance_id}-1-{}", request.quantity),
        )
        .map_err(|e| refuse("serialBlock", e.to_string()))?,
        (standard, None) => {
            return Err(refuse(
                "serialBlock",
                format!("a {standard} issuance needs the registry's serial block"),
            ));
        }
        (standard, Some(text)) => serial::parse(standard, text)
            .map_err(|e| refuse(format!("serialBlock.{}", e.part), e.reason))?,
    };
    if block.quantity() != request.quantity {
        return Err(refuse(
            "quantity",
            format!(
                "the serial block holds {} credits ({}), not {}",
                block.quantity(),
                block.range,
                request.quantity
            ),
        ));
    }
    if block.buffer {
        return Err(refuse(
            "serialBlock",
            "this is the registry's buffer-pool block; issue the project's own block",
        ));
    }
    if let Some(stated) = &block.project {
        match &project.registry_project_id {
            Some(id) if same_project(stated, id) => {}
            Some(id) => {
                return Err(refuse(
                    "serialBlock.project",
                    format!("the serial names project {stated}; this project is {id}"),
                ));
            }
            None => {
                return Err(refuse(
                    "serialBlock.project",
                    format!(
                        "the serial names project {stated}; set the project's registry id first"
                    ),
                ));
            }
        }
    }
    if let Some(stated) = &block.vintage
        && !stated.agrees_with(&request.vintage)
    {
        return Err(refuse(
            "serialBlock.vintage",
            format!(
                "the serial's vintage is {stated}; the request says {}",
                request.vintage
            ),
        ));
    }
    let buffer = policy.withheld(project.standard, &project.category, request.quantity);
    Ok(NewIssuance {
        id: issuance_id.to_owned(),
        project_id: project.id.clone(),
        serial: block,
        vintage: request.vintage,
        buffer,
        inventory_owner: project.owner.clone(),
        issued_by: issued_by.to_owned(),
        issued_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERRA: &str = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1";

    fn project(standard: Standard, registry_id: Option<&str>, category: &str) -> ProjectFacts {
        ProjectFacts {
            id: "prj_1".into(),
            standard,
            registry_project_id: registry_id.map(Into::into),
            category: category.into(),
            owner: "ORG#org_1".into(),
        }
    }

    fn request(quantity: u64, serial: Option<&str>, vintage: Vintage) -> IssueRequest {
        IssueRequest {
            vintage,
            quantity,
            serial_block: serial.map(Into::into),
        }
    }

    fn refused(project: &ProjectFacts, request: &IssueRequest) -> IssueError {
        prepare(
            project,
            request,
            &BufferPolicy::default(),
            "iss_1",
            "USER#v",
            Utc::now(),
        )
        .unwrap_err()
    }

    #[test]
    fn a_real_verra_block_for_a_forest_project_withholds_the_buffer_rounded_up() {
        let p = project(Standard::Vcs, Some("VCS1340"), "forest");
        let issued = prepare(
            &p,
            &request(425, Some(VERRA), Vintage::Year(2020)),
            &BufferPolicy::default(),
            "iss_1",
            "USER#v",
            Utc::now(),
        )
        .unwrap();
        assert_eq!(issued.buffer, 85, "20% of 425");
        let policy = BufferPolicy::parse("VCS=15").unwrap();
        assert_eq!(
            policy.withheld(Standard::Vcs, "forest", 425),
            64,
            "63.75 rounds up"
        );
        assert_eq!(policy.withheld(Standard::Vcs, "renewable-energy", 425), 0);
        assert_eq!(policy.withheld(Standard::Acr, "land-use", 10), 2);
    }

    #[test]
    fn each_disagreement_with_the_project_is_refused_naming_its_field() {
        let p = project(Standard::Vcs, Some("VCS1340"), "forest");
        let cases = [
            (request(424, Some(VERRA), Vintage::Year(2020)), "quantity"),
            (
                request(425, Some(VERRA), Vintage::Year(2019)),
                "serialBlock.vintage",
            ),
            (request(425, None, Vintage::Year(2020)), "serialBlock"),
            (request(0, Some(VERRA), Vintage::Year(2020)), "quantity"),
            (
                request(
                    425,
                    Some(
                        "19385-941467431-941467007-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
                    ),
                    Vintage::Year(2020),
                ),
                "serialBlock.end",
            ),
        ];
        for (request, field) in cases {
            assert_eq!(refused(&p, &request).field, field, "{request:?}");
        }
        let other = project(Standard::Vcs, Some("VCS1341"), "forest");
        assert_eq!(
            refused(&other, &request(425, Some(VERRA), Vintage::Year(2020))).field,
            "serialBlock.project"
        );
        let native = project(Standard::Native, None, "biomass-cdr");
        assert_eq!(
            refused(&native, &request(425, Some(VERRA), Vintage::Year(2020))).field,
            "serialBlock"
        );
        let buffer = project(Standard::Cercarbono, Some("CDC-1"), "forest");
        assert_eq!(
            refused(
                &buffer,
                &request(
                    226,
                    Some("CDC_1_1_1_321_14_1_2008_BF 1 to 226"),
                    Vintage::Year(2008)
                )
            )
            .reason,
            "this is the registry's buffer-pool block; issue the project's own block"
        );
    }

    #[test]
    fn a_native_issuance_gets_the_platforms_serials() {
        let p = project(Standard::Native, None, "biomass-cdr");
        let issued = prepare(
            &p,
            &request(1000, None, Vintage::Year(2025)),
            &BufferPolicy::default(),
            "iss_01J",
            "USER#v",
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            issued.serial.render(issued.serial.range),
            "AMC-iss_01J-1-1000"
        );
        assert_eq!(issued.buffer, 0, "biochar is permanent");
    }

    #[test]
    fn a_buffer_policy_refuses_unknown_standards_and_shares_over_100() {
        assert!(BufferPolicy::parse("VCS=101").is_err());
        assert!(BufferPolicy::parse("NOPE=5").is_err());
        assert!(BufferPolicy::parse("VCS").is_err());
        assert_eq!(BufferPolicy::parse("").unwrap(), BufferPolicy::default());
    }
}
