//! Carbon accounting: the emission-factor library, units, exact estimates and footprints.
//!
//! Pure domain code (factors, units, GWP sets, estimates) sits beside its HTTP routes in [`api`];
//! nothing here touches an SDK.

pub mod api;
pub mod estimate;
pub mod factors;
pub mod gwp;
pub mod units;

pub use estimate::{Estimate, EstimateError, estimate};
pub use factors::{Factor, Filter, Library, Source};
pub use gwp::GwpSet;
pub use units::{Unit, UnitType};
