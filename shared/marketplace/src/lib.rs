//! The carbon marketplace: projects and their verification, issuance into a serial-exact credit
//! ledger, listings and the public catalogue.
//!
//! Built so far: registry serial numbers ([`serial`]), the project taxonomy ([`taxonomy`]), the
//! checks that turn an issuance request into ledger blocks ([`issuance`]) and the credit ledger
//! ([`ledger`]), which the listings here and the orders of the next context move credits through. Pure domain code
//! and stores written on the Table port; nothing here touches an SDK.
//!
//! Reference: `docs/marketplace.md`.

pub mod issuance;
pub mod ledger;
pub mod projects;
pub mod serial;
pub mod taxonomy;

pub use ledger::{Account, Block, Issuance, Ledger, LedgerError, NewIssuance, Transfer};
pub use serial::{Range, SerialBlock, SerialError, Standard, Vintage};
