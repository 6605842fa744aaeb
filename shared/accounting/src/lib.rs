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
