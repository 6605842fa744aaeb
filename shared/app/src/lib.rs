//! Composition of AmanarCarbon: typed configuration, adapter wiring, the routers of every HTTP
//! function, and the queue consumers. Lambda binaries and the local runtime both start from here.

pub mod config;
pub mod jobs;
pub mod routes;
pub mod wiring;

pub use config::{Config, Face};
pub use wiring::{Wired, wire};
