//! Every key of the single table, built in this one module. The access-pattern table in the README
//! lists each pattern with the key it uses; keep both in step.
//!
//! | entity | pk | sk | gsi1 | gsi2 |
//! |---|---|---|---|---|
//! | system canary | `SYSTEM` | `CANARY` | | |
//! | idempotency record | `IDEMPOTENCY#<scope>` | `<key>` | | |
//! | upload | `UPLOAD#<uploadId>` | `UPLOAD` | `OWNER#<owner>` / `UPLOAD#<uploadId>` | `UPLOADS#pending` / `<createdAt>#<uploadId>` while pending |

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
