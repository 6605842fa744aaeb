//! Composition of AmanarCarbon: typed configuration, the composition root ([`Wiring`]), the list
//! of contexts, the routers of the HTTP functions, the OpenAPI document and the queue consumers.
//! Lambda binaries and the local runtime both start from here.

pub mod config;
pub mod jobs;
pub mod routes;
pub mod wiring;

use std::sync::Arc;

use amanar_http::scope::KnownScopes;
use amanar_http::{Context, Scope};

pub use config::{Config, Face};
pub use wiring::{Wiring, lambda_sdk_config};

/// Lists every bounded context once. Each context crate exports `context()` (its registration)
/// and `SCOPES` (its API-key scopes, also in the registration). The macro derives:
/// - [`contexts`]: every registration, for the local runtime, the jobs worker, housekeeping, the
///   OpenAPI document and the tests;
/// - [`SCOPES`]: the scopes alone, as data, so a function that validates API-key scopes does not
///   link every context's code.
macro_rules! contexts {
    ($($context:ident),* $(,)?) => {
        /// Every context, in the order the API reference lists them.
        pub fn contexts() -> Vec<Context<Wiring>> {
            vec![$($context::context()),*]
        }

        /// The API-key scopes of every context.
        pub const SCOPES: &[&[Scope]] = &[$($context::SCOPES),*];
    };
}

contexts!(
    amanar_platform,
    amanar_accounts,
    amanar_accounting,
    amanar_marketplace,
    amanar_orders,
    amanar_notifications
);

/// The functions that serve no HTTP route: the consumer of the `jobs` queue, the S3-triggered
/// upload check and the housekeeping schedule. Each context plugs into them through its
/// registration (jobs, upload follow-ups, housekeeping tasks).
pub const WORKERS: [&str; 3] = ["worker-jobs", "upload-verifier", "housekeeping"];

/// The functions of an adapter rather than of a context: the user pool's pre-token trigger
/// (`amanar_cognito::pre_token`), which Cognito calls before it issues tokens.
pub const ADAPTER_FUNCTIONS: [&str; 1] = ["cognito-pre-token"];

/// The name of every Lambda function: each HTTP function of every context, the workers, the
/// consumers of the contexts' own queues and the adapters' functions.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = routes::http_functions().iter().map(|f| f.name()).collect();
    names.extend(WORKERS);
    names.extend(jobs::context_consumers().iter().map(|c| c.function()));
    names.extend(ADAPTER_FUNCTIONS);
    names
}

/// Every scope an API key may be granted.
pub fn known_scopes() -> KnownScopes {
    KnownScopes(
        SCOPES
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect::<Arc<[Scope]>>(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_scope_list_and_the_registrations_agree_and_no_scope_is_declared_twice() {
        let from_contexts: Vec<Scope> = contexts()
            .iter()
            .flat_map(|c| c.scopes.iter().copied())
            .collect();
        let listed: Vec<Scope> = known_scopes().0.to_vec();
        assert_eq!(from_contexts, listed);
        let unique: BTreeSet<Scope> = listed.iter().copied().collect();
        assert_eq!(unique.len(), listed.len(), "a scope is declared twice");
    }

    #[test]
    fn every_function_and_message_type_is_registered_once() {
        let mut names = BTreeSet::new();
        let mut types = BTreeSet::new();
        let mut purposes = BTreeSet::new();
        for context in contexts() {
            for function in &context.http {
                assert!(names.insert(function.name()), "{} twice", function.name());
            }
            for job in &context.jobs {
                assert!(
                    types.insert(job.message_type()),
                    "{} twice",
                    job.message_type()
                );
            }
            for upload in &context.uploads {
                assert!(
                    purposes.insert(upload.purpose()),
                    "{} twice",
                    upload.purpose()
                );
            }
        }
        assert!(
            !types.contains(
                <amanar_core::messages::UploadChecked as amanar_core::messages::JobMessage>::TYPE
            ),
            "upload-checked.v1 is routed by purpose, not registered as a job"
        );
    }
}
