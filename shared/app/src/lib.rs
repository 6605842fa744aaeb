//! Composition of the product: typed configuration, adapter wiring, routers per function, jobs and schedules
