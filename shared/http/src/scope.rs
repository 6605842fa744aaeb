//! Who the caller is and what it may do: the API-key [`Scope`]s every context declares, the one
//! check [`require_scope`], its one "insufficient scope" problem, and the one subject string that
//! names a caller in rate limits, audit logs and idempotency records.

use crate::auth::{ApiKeyCaller, Principal};
use crate::problem::ApiError;

/// A permission an API key can be granted, such as `footprints:read`. Each context declares its
/// scopes as constants in its descriptor; API keys accept exactly the scopes the contexts declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(&'static str);

impl Scope {
    /// `name` is `<resource>:<read|write>`, lower case.
    pub const fn new(name: &'static str) -> Self {
        Scope(name)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl ApiKeyCaller {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s == scope.as_str())
    }
}

/// Every scope an API key may be granted: the union of what the contexts declare, listed once
/// by the composition root.
#[derive(Debug, Clone)]
pub struct KnownScopes(pub std::sync::Arc<[Scope]>);

/// The slug of the problem for an API key that lacks a scope.
pub const INSUFFICIENT_SCOPE: &str = "insufficient-scope";

/// What the problem for a missing `scope` says.
pub fn insufficient_scope_detail(scope: Scope) -> String {
    format!("This API key lacks the {scope} scope.")
}

/// The problem for an API key that lacks a scope (403 `insufficient-scope`).
pub fn insufficient_scope(scope: Scope) -> ApiError {
    ApiError::Forbidden {
        slug: INSUFFICIENT_SCOPE,
        detail: insufficient_scope_detail(scope),
    }
}

/// Lets a signed-in user through (their roles are checked by the use case), and an API key only
/// with `scope`.
pub fn require_scope(principal: &Principal, scope: Scope) -> Result<(), ApiError> {
    match principal {
        Principal::User(_) => Ok(()),
        Principal::Key(key) if key.has_scope(scope) => Ok(()),
        Principal::Key(_) => Err(insufficient_scope(scope)),
    }
}

/// The one string that names a caller: `user:<userId>` or `key:<keyId>`.
pub fn user_subject(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// See [`user_subject`].
pub fn key_subject(key_id: &str) -> String {
    format!("key:{key_id}")
}

impl Principal {
    /// The caller's subject ([`user_subject`] or [`key_subject`]).
    pub fn subject(&self) -> String {
        match self {
            Principal::User(caller) => user_subject(&caller.user_id),
            Principal::Key(key) => key_subject(&key.key_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;

    const READ: Scope = Scope::new("things:read");
    const WRITE: Scope = Scope::new("things:write");

    fn key(scopes: &[&str]) -> Principal {
        Principal::Key(ApiKeyCaller {
            key_id: "key_1".into(),
            org_id: "org_1".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn a_key_passes_only_with_the_scope_and_a_user_always_does() {
        assert!(require_scope(&key(&["things:read"]), READ).is_ok());
        let refused = require_scope(&key(&["things:read"]), WRITE).unwrap_err();
        assert!(matches!(
            refused,
            ApiError::Forbidden { slug: "insufficient-scope", ref detail } if detail.contains("things:write")
        ));
        let user = Principal::User(Caller {
            user_id: "usr_1".into(),
            groups: vec![],
        });
        assert!(require_scope(&user, WRITE).is_ok());
    }

    #[test]
    fn users_and_keys_have_one_subject_each() {
        assert_eq!(key(&[]).subject(), "key:key_1");
        assert_eq!(user_subject("usr_1"), "user:usr_1");
    }
}
