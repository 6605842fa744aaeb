//! Carbon accounting: the emission-factor library, units, exact estimates, footprints (the
//! personal calculator and organisational scopes) and activity imports.
//!
//! Pure domain code (factors, units, GWP sets, estimates, the footprint calculation) sits beside
//! the stores written on the Table and Blobs ports and the HTTP routes in [`api`] and
//! [`api_footprints`]; nothing here touches an SDK.
//!
//! Reference: `docs/accounting.md`.

pub mod activity_csv;
pub mod api;
pub mod api_footprints;
pub mod calculation;
pub mod estimate;
pub mod factors;
pub mod footprints;
pub mod gwp;
pub mod imports;
pub mod period;
pub mod personal;
pub mod units;

pub use estimate::{Estimate, EstimateError, estimate};
pub use factors::{Factor, Filter, Library, Source};
pub use gwp::GwpSet;
pub use units::{Unit, UnitType};

use std::sync::Arc;

use amanar_core::{Ports, Provide};
use amanar_http::{Context, OrgGuard, Scope, Tag};

/// API-key scope of `POST /v1/estimates[/batch]`.
pub const ESTIMATES_WRITE: Scope = Scope::new("estimates:write");
/// API-key scopes of an organisation's footprints and activity imports.
pub const FOOTPRINTS_READ: Scope = Scope::new("footprints:read");
pub const FOOTPRINTS_WRITE: Scope = Scope::new("footprints:write");

/// Every API-key scope carbon accounting declares.
pub const SCOPES: &[Scope] = &[ESTIMATES_WRITE, FOOTPRINTS_READ, FOOTPRINTS_WRITE];

pub const TAG: Tag = Tag {
    name: "carbon accounting",
    description: "Emission factors, units, estimates, footprints and activity imports",
};

/// Carbon accounting's registration: four HTTP functions, the follow-up of checked activity
/// files, and the sweeper of stuck imports.
pub fn context<D>() -> Context<D>
where
    D: Provide<Ports> + Provide<Arc<dyn OrgGuard>> + Sync + 'static,
{
    Context::new("accounting", TAG, SCOPES)
        .http(api::FACTORS)
        .http(api::ESTIMATES)
        .http(api_footprints::FOOTPRINTS)
        .http(api_footprints::IMPORTS)
        .upload(imports::UPLOAD)
        .housekeeping(imports::SWEEP)
}
