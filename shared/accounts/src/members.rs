//! Members of an organisation with their roles: listing them, changing a role, removing a member
//! (or leaving), and the owner count that keeps every organisation with at least one owner.

use std::sync::Arc;

use amanar_core::table::{
    Condition, Index, Item, Query, Table, TableError, Update, WriteOp, items,
};
use amanar_core::{Clock, Cursor, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{OrgAccess, Role, forbidden, not_found};
use crate::audit::{Audit, AuditEvent};
use crate::orgs::Listed;
use crate::service::AccountsError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// The attribute of an organisation's item that counts its owners. It moves in the same
/// transactions as owner changes, so "at least one owner" is a condition on the write.
pub(crate) const OWNER_COUNT: &str = "ownerCount";

fn last_owner() -> AccountsError {
    AccountsError::ConflictWith {
        slug: "last-owner",
        detail: "An organisation keeps at least one owner; make another member owner first.".into(),
    }
}

/// Why a role change or removal did not commit: operation 1 is the owner count's guard (the
/// last owner stays), operation 0 the member's own role having changed meanwhile.
fn membership_write_failed(error: TableError) -> AccountsError {
    match error {
        TableError::ConditionFailed { index: 1, .. } => last_owner(),
        TableError::ConditionFailed { .. } => AccountsError::Conflict,
        other => other.into(),
    }
}

/// The write that moves the organisation's owner count, if a role change moves it.
pub(crate) fn owner_count_change(
    org_id: &str,
    from: Option<Role>,
    to: Option<Role>,
) -> Option<WriteOp> {
    let was = from == Some(Role::Owner);
    let is = to == Some(Role::Owner);
    match (was, is) {
        (true, false) => Some(
            WriteOp::update(keys::org(org_id), Update::new().add(OWNER_COUNT, -1))
                .when(Condition::AtLeast(OWNER_COUNT.into(), 2)),
        ),
        (false, true) => Some(
            WriteOp::update(keys::org(org_id), Update::new().add(OWNER_COUNT, 1))
                .when(Condition::Exists),
        ),
        _ => None,
    }
}

/// A membership's item, indexed under its user too (their list of organisations).
pub(crate) fn member_item(member: &Member) -> Result<Item, AccountsError> {
    let mut item = items::with_key(&keys::org_member(&member.org_id, &member.user_id), member)?;
    keys::membership_of_user(&member.user_id, &member.org_id).insert_into(&mut item);
    Ok(item)
}

/// Role changes and removals, checked against the caller's own access.
pub struct Members {
    access: OrgAccess,
    table: Arc<dyn Table>,
    audit: Audit,
}

impl Members {
    pub fn new(access: OrgAccess, table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self {
            access,
            audit: Audit::new(table.clone(), clock),
            table,
        }
    }

    /// Members of an organisation (the caller's access is checked by the route).
    pub async fn list(
        &self,
        org_id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<Listed<Member>, AccountsError> {
        let page = self
            .table
            .query(
                &Query::partition(Index::Primary, keys::org_partition(org_id))
                    .sort(amanar_core::SortKey::BeginsWith(keys::MEMBERS.into()))
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let (parsed, next) = items::parse_page(page)?;
        Ok(Listed {
            items: parsed,
            next,
        })
    }

    /// Changes a member's role. Admins manage members and viewers; owners manage everyone; the
    /// last owner stays an owner.
    pub async fn set_role(
        &self,
        user_id: &str,
        org_id: &str,
        member_id: &str,
        role: Role,
    ) -> Result<Member, AccountsError> {
        self.access.gate(user_id).await?;
        let access = self.access.access(user_id, org_id, Role::Admin).await?;
        let mut member = self
            .access
            .membership(org_id, member_id)
            .await?
            .ok_or_else(not_found)?;
        if (member.role == Role::Owner || role == Role::Owner) && access.role != Role::Owner {
            return Err(forbidden("Only owners can make or change owners."));
        }
        let previous = member.role;
        member.role = role;
        let ops: Vec<WriteOp> = std::iter::once(
            WriteOp::update(
                keys::org_member(org_id, member_id),
                Update::new().set("role", role.as_str()),
            )
            .when(Condition::Equals("role".into(), previous.as_str().into())),
        )
        .chain(owner_count_change(org_id, Some(previous), Some(role)))
        .collect();
        self.table
            .write(ops)
            .await
            .map_err(membership_write_failed)?;
        self.audit
            .record(
                &[user_id, member_id],
                Some(org_id),
                AuditEvent::new(user_id, "member.role_changed")
                    .target(member_id)
                    .detail(format!("{} -> {}", previous.as_str(), role.as_str())),
            )
            .await?;
        Ok(member)
    }

    /// Removes a member (admins), or leaves (any member removing themself).
    pub async fn remove(
        &self,
        user_id: &str,
        org_id: &str,
        member_id: &str,
    ) -> Result<(), AccountsError> {
        self.access.gate(user_id).await?;
        let needed = if user_id == member_id {
            Role::Viewer
        } else {
            Role::Admin
        };
        let access = self.access.access(user_id, org_id, needed).await?;
        let member = self
            .access
            .membership(org_id, member_id)
            .await?
            .ok_or_else(not_found)?;
        if member.role == Role::Owner && user_id != member_id && access.role != Role::Owner {
            return Err(forbidden("Only owners can remove owners."));
        }
        let ops: Vec<WriteOp> =
            std::iter::once(WriteOp::delete(keys::org_member(org_id, member_id)).when(
                Condition::Equals("role".into(), member.role.as_str().into()),
            ))
            .chain(owner_count_change(org_id, Some(member.role), None))
            .collect();
        self.table
            .write(ops)
            .await
            .map_err(membership_write_failed)?;
        self.audit
            .record(
                &[user_id, member_id],
                Some(org_id),
                AuditEvent::new(user_id, "member.removed").target(member_id),
            )
            .await?;
        Ok(())
    }
}
