//! Every key of the single table, built in this one module. The access-pattern table in
//! `docs/storage.md` lists each pattern with the key it uses; keep both in step.
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
//! | local IdP social link | `IDP#SOCIAL#<provider>#<sub>` | `LINK` | | |
//! | organisation | `ORG#<orgId>` | `ORG` | `ORG#<parentId>#CHILDREN` / `<orgId>` for a child | |
//! | member | `ORG#<orgId>` | `MEMBER#<userId>` | `USER#<userId>#ORGS` / `<orgId>` | |
//! | invitation | `ORG#<orgId>` | `INVITE#<email>` | `INVITES#<email>` / `<orgId>` | |
//! | API key (listing) | `ORG#<orgId>` | `APIKEY#<keyId>` | | |
//! | API key (lookup) | `APIKEY#<sha256 of secret>` | `KEY` | `APIKEY#<keyId>` / `KEY` | |
//! | audit log head / entry | `AUDIT#<USER#id or ORG#id>` | `HEAD` / `E#<seq>` | | |
//! | rate-limit window | `RATE#<user:id or key:id>` | `<window start>` | | |
//! | TOTP challenge's email (lockout) | `MFA#<sha256 of session>` | `EMAIL` | | |
//! | social login state | `SOCIAL#STATE#<sha256 of state>` | `STATE` | | |
//! | footprint | `FOOTPRINT#<footprintId>` | `FOOTPRINT` | `FOOTPRINTS#<owner>` / `<period start>#<footprintId>` while current | |
//! | an owner's current footprint periods | `FOOTPRINTS#<owner>` | `PERIODS` | | |
//! | activity import | `IMPORT#<importId>` | `IMPORT` | `ORG#<orgId>#IMPORTS` / `<importId>` | `IMPORTS#open` / `<updatedAt>#<importId>` until final |
//!
//! A footprint owner is `USER#<userId>` or `ORG#<orgId>`.

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

pub fn idp_social_link(provider: &str, subject: &str) -> Key {
    Key::new(format!("IDP#SOCIAL#{provider}#{subject}"), "LINK")
}

/// Partition of an organisation and everything it holds (members, invitations, keys).
pub fn org_partition(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

pub fn org(org_id: &str) -> Key {
    Key::new(org_partition(org_id), "ORG")
}

pub fn org_member(org_id: &str, user_id: &str) -> Key {
    Key::new(org_partition(org_id), format!("MEMBER#{user_id}"))
}

pub fn org_invitation(org_id: &str, email: &str) -> Key {
    Key::new(org_partition(org_id), format!("INVITE#{email}"))
}

/// GSI1 partition listing a user's memberships.
pub fn orgs_of_user(user_id: &str) -> String {
    format!("USER#{user_id}#ORGS")
}

/// GSI1 partition listing an enterprise's child organisations.
pub fn children_of(org_id: &str) -> String {
    format!("ORG#{org_id}#CHILDREN")
}

/// GSI1 partition listing the invitations to an email.
pub fn invitations_of(email: &str) -> String {
    format!("INVITES#{email}")
}

pub fn api_key_listing(org_id: &str, key_id: &str) -> Key {
    Key::new(org_partition(org_id), format!("APIKEY#{key_id}"))
}

pub fn api_key_lookup(secret_hash: &str) -> Key {
    Key::new(format!("APIKEY#{secret_hash}"), "KEY")
}

/// GSI1 partition finding an API key's lookup item by key id.
pub fn api_key_by_id(key_id: &str) -> String {
    format!("APIKEY#{key_id}")
}

/// Partition of one audit log (`USER#<id>` or `ORG#<id>`).
pub fn audit_partition(stream: &str) -> String {
    format!("AUDIT#{stream}")
}

pub fn audit_head(stream: &str) -> Key {
    Key::new(audit_partition(stream), "HEAD")
}

pub fn audit_entry(stream: &str, seq: u64) -> Key {
    Key::new(audit_partition(stream), format!("E#{seq:012}"))
}

pub fn rate_window(subject: &str, window_start: i64) -> Key {
    Key::new(format!("RATE#{subject}"), window_start.to_string())
}

pub fn social_state(state_hash: &str) -> Key {
    Key::new(format!("SOCIAL#STATE#{state_hash}"), "STATE")
}

pub fn mfa_challenge(session_hash: &str) -> Key {
    Key::new(format!("MFA#{session_hash}"), "EMAIL")
}

/// A footprint's owner as keys name it: a person or an organisation.
pub fn footprint_owner_user(user_id: &str) -> String {
    format!("USER#{user_id}")
}

pub fn footprint_owner_org(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

pub fn footprint(footprint_id: &str) -> Key {
    Key::new(format!("FOOTPRINT#{footprint_id}"), "FOOTPRINT")
}

/// The owner's current footprint periods: the item every new footprint of the owner is checked
/// against (and moves) in the same transaction, so two footprints never cover the same day.
pub fn footprint_periods(owner: &str) -> Key {
    Key::new(format!("FOOTPRINTS#{owner}"), "PERIODS")
}

/// GSI1 partition listing an owner's current footprints by period start.
pub fn footprints_of(owner: &str) -> String {
    format!("FOOTPRINTS#{owner}")
}

pub fn activity_import(import_id: &str) -> Key {
    Key::new(format!("IMPORT#{import_id}"), "IMPORT")
}

/// GSI2 partition listing unfinished activity imports by when they last moved (the sweeper reads it).
pub const OPEN_IMPORTS: &str = "IMPORTS#open";

/// GSI1 partition listing an organisation's activity imports, oldest first.
pub fn imports_of_org(org_id: &str) -> String {
    format!("ORG#{org_id}#IMPORTS")
}
