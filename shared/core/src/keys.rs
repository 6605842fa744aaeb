//! Every key of the single table, built in this one module. The access-pattern table in the README
//! lists each pattern with the key it uses; keep both in step.
//!
//! | entity | pk | sk | gsi1 | gsi2 |
//! |---|---|---|---|---|
//! | system canary | `SYSTEM` | `CANARY` | | |
//! | idempotency record | `IDEMPOTENCY#<scope>` | `<key>` | | |
//! | upload | `UPLOAD#<uploadId>` | `UPLOAD` | `OWNER#<owner>` / `UPLOAD#<uploadId>` | `UPLOADS#pending` / `<createdAt>#<uploadId>` while pending |
//! | user profile | `USER#<userId>` | `PROFILE` | | |
//! | failed logins of an email | `LOGIN#<email>` | `FAILURES` | | |
//! | local IdP credentials | `IDP#EMAIL#<email>` | `CREDENTIALS` | `IDP#USER#<userId>` / `CREDENTIALS` | |
//! | local IdP code (verify, reset) | `IDP#EMAIL#<email>` | `CODE#<purpose>` | | |
//! | local IdP refresh token | `IDP#REFRESH#<sha256 of token>` | `TOKEN` | | |
//! | local IdP MFA challenge | `IDP#MFA#<sha256 of session>` | `SESSION` | | |
//! | local IdP signing key | `IDP` | `SIGNING_KEY` | | |
//! | local mailbox message | `MAILBOX#<email>` | `<sentAt>#<id>` | | |

use crate::table::Key;

pub fn canary() -> Key {
    Key::new("SYSTEM", "CANARY")
}

pub fn idempotency(scope: &str, key: &str) -> Key {
    Key::new(format!("IDEMPOTENCY#{scope}"), key)
}

pub fn upload(upload_id: &str) -> Key {
    Key::new(format!("UPLOAD#{upload_id}"), "UPLOAD")
}

/// GSI2 partition listing uploads still waiting for their check, oldest first (the sweeper reads it).
pub const PENDING_UPLOADS: &str = "UPLOADS#pending";

/// GSI1 partition listing an owner's uploads, newest last.
pub fn uploads_of_owner(owner: &str) -> String {
    format!("OWNER#{owner}")
}

pub fn user_profile(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

pub fn login_failures(email: &str) -> Key {
    Key::new(format!("LOGIN#{email}"), "FAILURES")
}

pub fn idp_credentials(email: &str) -> Key {
    Key::new(format!("IDP#EMAIL#{email}"), "CREDENTIALS")
}

/// GSI1 partition finding a local IdP user's credentials by user id.
pub fn idp_user(user_id: &str) -> String {
    format!("IDP#USER#{user_id}")
}

pub fn idp_code(email: &str, purpose: &str) -> Key {
    Key::new(format!("IDP#EMAIL#{email}"), format!("CODE#{purpose}"))
}

pub fn idp_refresh_token(token_hash: &str) -> Key {
    Key::new(format!("IDP#REFRESH#{token_hash}"), "TOKEN")
}

pub fn idp_signing_key() -> Key {
    Key::new("IDP", "SIGNING_KEY")
}

pub fn mailbox(email: &str) -> String {
    format!("MAILBOX#{email}")
}

pub fn idp_mfa_session(session_hash: &str) -> Key {
    Key::new(format!("IDP#MFA#{session_hash}"), "SESSION")
}
