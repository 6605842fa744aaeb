//! Organisations, members with roles, invitations by email, and enterprise child organisations.
//!
//! Every access goes through [`Orgs::access`]: a caller who is neither a member of the
//! organisation nor an owner or admin of one of its ancestors gets "not found" (another tenant's
//! resource does not exist for them); a member whose role is too low gets "forbidden".

use std::sync::Arc;

use amanar_core::table::{
    Condition, Index, Item, Query, Table, TableError, Update, WriteOp, items,
};
use amanar_core::{Clock, Cursor, keys, new_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::apikeys::{ApiKey, ApiKeyStore, KeyError};
use crate::audit::{Audit, AuditEvent};
use crate::policy::{self, AccountType};
use crate::service::{Accounts, AccountsError, Profile};

/// Organisation roles, from most to least powerful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

const OWNER_COUNT: &str = "ownerCount";

fn last_owner() -> AccountsError {
    AccountsError::ConflictWith {
        slug: "last-owner",
        detail: "An organisation keeps at least one owner; make another member owner first.".into(),
    }
}

/// The write that moves the organisation's owner count, if a role change moves it.
fn owner_count_change(org_id: &str, from: Option<Role>, to: Option<Role>) -> Option<WriteOp> {
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

/// How deep enterprise hierarchies go.
pub const MAX_DEPTH: usize = 5;
/// How long an invitation stays open.
pub const INVITATION_SECS: i64 = 14 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub org_id: String,
    pub name: String,
    /// The enterprise organisation this one belongs to.
    pub parent_org_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The caller's standing in an organisation: their own role there, or admin through an ancestor.
#[derive(Debug, Clone)]
pub struct Access {
    pub org: Org,
    pub role: Role,
}

fn not_found() -> AccountsError {
    AccountsError::NotFound
}

fn forbidden(detail: impl Into<String>) -> AccountsError {
    AccountsError::Forbidden {
        slug: "insufficient-role",
        detail: detail.into(),
    }
}

/// One page of a list, with the cursor of the next.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

pub struct Orgs {
    accounts: Arc<Accounts>,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    mailer: Arc<dyn amanar_core::mail::Mailer>,
    audit: Audit,
    pub keys: ApiKeyStore,
    /// Every scope an API key may be granted (what the contexts declare).
    scopes: amanar_http::scope::KnownScopes,
}

impl Orgs {
    /// `mailbox` is where invitations are mailed in the local runtime; without one (AWS, until
    /// outgoing mail lands) invitees find them at `GET /v1/me/invitations`.
    /// `mailer` sends invitations: the local mailbox in the local runtime, SES in AWS.
    pub fn new(
        accounts: Arc<Accounts>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        mailer: Arc<dyn amanar_core::mail::Mailer>,
        scopes: amanar_http::scope::KnownScopes,
    ) -> Self {
        Self {
            scopes,
            audit: Audit::new(table.clone(), clock.clone()),
            keys: ApiKeyStore::new(table.clone(), clock.clone()),
            accounts,
            table,
            clock,
            mailer,
        }
    }

    /// The caller's profile, refusing enterprise accounts without MFA (they must enable it
    /// before any organisation action).
    pub async fn gate(&self, user_id: &str) -> Result<Profile, AccountsError> {
        let profile = self.accounts.profile(user_id).await?;
        if profile.account_type == AccountType::Enterprise && !profile.mfa_enabled {
            return Err(AccountsError::Forbidden {
                slug: "mfa-required",
                detail: "Enterprise accounts must enable MFA (POST /v1/me/mfa/totp) before using organisations.".into(),
            });
        }
        Ok(profile)
    }

    async fn org(&self, org_id: &str) -> Result<Option<Org>, AccountsError> {
        Ok(match self.table.get(&keys::org(org_id)).await? {
            Some(item) => Some(items::parse(item)?),
            None => None,
        })
    }

    async fn membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<Member>, AccountsError> {
        Ok(
            match self.table.get(&keys::org_member(org_id, user_id)).await? {
                Some(item) => Some(items::parse(item)?),
                None => None,
            },
        )
    }

    /// Access for a user (by role) or an API key (its own organisation, with `scope`).
    pub async fn access_as(
        &self,
        principal: &amanar_http::Principal,
        org_id: &str,
        needed: Role,
        scope: amanar_http::Scope,
    ) -> Result<Access, AccountsError> {
        match principal {
            amanar_http::Principal::User(caller) => {
                self.gate(&caller.user_id).await?;
                self.access(&caller.user_id, org_id, needed).await
            }
            amanar_http::Principal::Key(key) => {
                if key.org_id != org_id {
                    return Err(not_found());
                }
                if !key.has_scope(scope) {
                    return Err(AccountsError::Forbidden {
                        slug: amanar_http::scope::INSUFFICIENT_SCOPE,
                        detail: amanar_http::scope::insufficient_scope_detail(scope),
                    });
                }
                let org = self.org(org_id).await?.ok_or_else(not_found)?;
                Ok(Access {
                    org,
                    role: Role::Viewer,
                })
            }
        }
    }

    /// Creates an API key (owners and admins); returns it with its secret, shown once.
    pub async fn create_key(
        &self,
        user_id: &str,
        org_id: &str,
        name: &str,
        scopes: &[String],
    ) -> Result<(ApiKey, String), AccountsError> {
        self.gate(user_id).await?;
        self.access(user_id, org_id, Role::Admin).await?;
        let (key, secret) = self
            .keys
            .create(org_id, user_id, name, scopes, &self.scopes.0)
            .await
            .map_err(|e| match e {
                KeyError::Invalid(message) => AccountsError::Invalid {
                    field: if message.starts_with("name") {
                        "name"
                    } else {
                        "scopes"
                    },
                    message,
                },
                KeyError::TooMany => AccountsError::ConflictWith {
                    slug: "too-many-keys",
                    detail: e.to_string(),
                },
                KeyError::Table(e) => e.into(),
            })?;
        self.audit
            .record(
                &[user_id],
                Some(org_id),
                AuditEvent::new(user_id, "apikey.created")
                    .target(&key.key_id)
                    .detail(key.scopes.join(",")),
            )
            .await?;
        Ok((key, secret))
    }

    pub async fn list_keys(
        &self,
        user_id: &str,
        org_id: &str,
    ) -> Result<Vec<ApiKey>, AccountsError> {
        self.gate(user_id).await?;
        self.access(user_id, org_id, Role::Admin).await?;
        Ok(self.keys.list(org_id).await?)
    }

    pub async fn revoke_key(
        &self,
        user_id: &str,
        org_id: &str,
        key_id: &str,
    ) -> Result<(), AccountsError> {
        self.gate(user_id).await?;
        self.access(user_id, org_id, Role::Admin).await?;
        if !self.keys.revoke(org_id, key_id).await? {
            return Err(not_found());
        }
        self.audit
            .record(
                &[user_id],
                Some(org_id),
                AuditEvent::new(user_id, "apikey.revoked").target(key_id),
            )
            .await?;
        Ok(())
    }

    /// The caller's standing in `org_id`, requiring at least `needed`.
    pub async fn access(
        &self,
        user_id: &str,
        org_id: &str,
        needed: Role,
    ) -> Result<Access, AccountsError> {
        let org = self.org(org_id).await?.ok_or_else(not_found)?;
        let direct = self.membership(org_id, user_id).await?.map(|m| m.role);
        // Owners and admins of an ancestor administer its descendants; a lower direct role
        // there does not hide that.
        let mut inherited = None;
        let mut parent = org.parent_org_id.clone();
        let mut depth = 0;
        while direct.is_none_or(|r| r < Role::Admin) && depth < MAX_DEPTH {
            let Some(ancestor) = parent else { break };
            if let Some(m) = self.membership(&ancestor, user_id).await?
                && m.role >= Role::Admin
            {
                inherited = Some(Role::Admin);
                break;
            }
            parent = self.org(&ancestor).await?.and_then(|o| o.parent_org_id);
            depth += 1;
        }
        let role = direct.max(inherited);
        let role = role.ok_or_else(not_found)?;
        if role < needed {
            return Err(forbidden(format!(
                "This needs the {} role or higher in the organisation; you are {}.",
                needed.as_str(),
                role.as_str()
            )));
        }
        Ok(Access { org, role })
    }

    fn member_item(&self, member: &Member) -> Result<Item, AccountsError> {
        let mut item = items::with_key(&keys::org_member(&member.org_id, &member.user_id), member)?;
        keys::membership_of_user(&member.user_id, &member.org_id).insert_into(&mut item);
        Ok(item)
    }

    /// Creates an organisation owned by the caller; with a parent, a child organisation of an
    /// enterprise the caller administers.
    pub async fn create(
        &self,
        user_id: &str,
        name: &str,
        parent_org_id: Option<&str>,
    ) -> Result<Org, AccountsError> {
        let profile = self.gate(user_id).await?;
        let name = policy::check_name(name).map_err(|m| AccountsError::Invalid {
            field: "name",
            message: m.into(),
        })?;
        if let Some(parent) = parent_org_id {
            if profile.account_type != AccountType::Enterprise {
                return Err(AccountsError::Forbidden {
                    slug: "enterprise-only",
                    detail: "Only enterprise accounts can create child organisations.".into(),
                });
            }
            let access = self.access(user_id, parent, Role::Admin).await?;
            let mut depth = 1;
            let mut up = access.org.parent_org_id.clone();
            while let Some(id) = up {
                depth += 1;
                up = self.org(&id).await?.and_then(|o| o.parent_org_id);
            }
            if depth >= MAX_DEPTH {
                return Err(AccountsError::Invalid {
                    field: "parentOrgId",
                    message: format!("organisations nest at most {MAX_DEPTH} deep"),
                });
            }
        }
        let now = self.clock.now();
        let org = Org {
            org_id: new_id("org"),
            name,
            parent_org_id: parent_org_id.map(str::to_owned),
            created_by: user_id.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let mut org_item = items::with_key(&keys::org(&org.org_id), &org)?;
        // Kept in the same transactions as owner changes, so "at least one owner" is a condition.
        org_item.insert(OWNER_COUNT.into(), 1.into());
        if let Some(parent) = &org.parent_org_id {
            keys::child_of(parent, &org.org_id).insert_into(&mut org_item);
        }
        let owner = Member {
            org_id: org.org_id.clone(),
            user_id: user_id.to_owned(),
            email: profile.email.clone(),
            name: profile.name.clone(),
            role: Role::Owner,
            joined_at: now,
        };
        self.table
            .write(vec![
                WriteOp::put(org_item).when(Condition::NotExists),
                WriteOp::put(self.member_item(&owner)?).when(Condition::NotExists),
            ])
            .await?;
        self.audit
            .record(
                &[user_id],
                Some(&org.org_id),
                AuditEvent::new(user_id, "org.created").target(&org.org_id),
            )
            .await?;
        Ok(org)
    }

    /// The organisations the caller belongs to, with their role in each.
    pub async fn mine(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<Listed<Member>, AccountsError> {
        self.gate(user_id).await?;
        let page = self
            .table
            .query(
                &Query::partition(Index::Gsi1, keys::orgs_of_user(user_id))
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

    pub async fn get(&self, user_id: &str, org_id: &str) -> Result<Access, AccountsError> {
        self.gate(user_id).await?;
        self.access(user_id, org_id, Role::Viewer).await
    }

    pub async fn rename(
        &self,
        user_id: &str,
        org_id: &str,
        name: &str,
    ) -> Result<Org, AccountsError> {
        self.gate(user_id).await?;
        let mut org = self.access(user_id, org_id, Role::Admin).await?.org;
        org.name = policy::check_name(name).map_err(|m| AccountsError::Invalid {
            field: "name",
            message: m.into(),
        })?;
        org.updated_at = self.clock.now();
        self.table
            .write(vec![
                WriteOp::update(
                    keys::org(org_id),
                    Update::new()
                        .set("name", org.name.clone())
                        .set("updatedAt", org.updated_at.to_rfc3339()),
                )
                .when(Condition::Exists),
            ])
            .await?;
        self.audit
            .record(
                &[user_id],
                Some(org_id),
                AuditEvent::new(user_id, "org.renamed").target(org_id),
            )
            .await?;
        Ok(org)
    }

    /// The direct child organisations (enterprises).
    pub async fn children(&self, org_id: &str) -> Result<Vec<Org>, AccountsError> {
        let page = self
            .table
            .query(&Query::partition(Index::Gsi1, keys::children_of(org_id)).limit(100))
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(items::parse)
            .collect::<Result<_, _>>()?)
    }

    /// Members of an organisation (the caller's access is checked by the route).
    pub async fn members(
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

    /// Invites an email to the organisation with a role; the invitee accepts after logging in.
    pub async fn invite(
        &self,
        user_id: &str,
        org_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Invitation, AccountsError> {
        self.gate(user_id).await?;
        let access = self.access(user_id, org_id, Role::Admin).await?;
        if role == Role::Owner && access.role != Role::Owner {
            return Err(forbidden("Only owners can invite owners."));
        }
        let email = policy::normalise_email(email).map_err(|m| AccountsError::Invalid {
            field: "email",
            message: m.into(),
        })?;
        let now = self.clock.now();
        let invitation = Invitation {
            org_id: org_id.to_owned(),
            org_name: access.org.name.clone(),
            email: email.clone(),
            role,
            invited_by: user_id.to_owned(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(INVITATION_SECS),
        };
        // `expiresAt` here is the invitation's RFC 3339 expiry, so no TTL attribute: expired
        // invitations are filtered on read and replaced by a new invitation to the same address.
        let mut item = items::with_key(&keys::org_invitation(org_id, &email), &invitation)?;
        keys::invitation_to(&email, org_id).insert_into(&mut item);
        self.table.write(vec![WriteOp::put(item)]).await?;
        let subject = format!("You are invited to {} on AmanarCarbon", access.org.name);
        let text = format!(
            "You are invited to join {} as {}. Log in (or register with this address) and accept at POST /v1/orgs/{org_id}/invitations/accept. The invitation expires in 14 days.",
            access.org.name,
            role.as_str()
        );
        // The invitation stands even if the mail fails: the invitee also finds it at
        // GET /v1/me/invitations.
        if let Err(error) = self.mailer.send(&email, &subject, &text).await {
            tracing::warn!(%error, "invitation mail not sent");
        }
        self.audit
            .record(
                &[user_id],
                Some(org_id),
                AuditEvent::new(user_id, "member.invited").target(role.as_str()),
            )
            .await?;
        Ok(invitation)
    }

    /// Invitations waiting for the caller's email.
    pub async fn my_invitations(&self, user_id: &str) -> Result<Vec<Invitation>, AccountsError> {
        let profile = self.accounts.profile(user_id).await?;
        let page = self
            .table
            .query(&Query::partition(Index::Gsi1, keys::invitations_of(&profile.email)).limit(100))
            .await?;
        let now = self.clock.now();
        let invitations: Vec<Invitation> = page
            .items
            .into_iter()
            .map(items::parse)
            .collect::<Result<_, _>>()?;
        Ok(invitations
            .into_iter()
            .filter(|i| i.expires_at > now)
            .collect())
    }

    /// Accepts the invitation to the caller's email: the caller becomes a member, once.
    pub async fn accept(&self, user_id: &str, org_id: &str) -> Result<Member, AccountsError> {
        let profile = self.gate(user_id).await?;
        let key = keys::org_invitation(org_id, &profile.email);
        let invitation: Invitation = match self.table.get(&key).await? {
            Some(item) => items::parse(item)?,
            None => return Err(not_found()),
        };
        if invitation.expires_at <= self.clock.now() {
            return Err(not_found());
        }
        let member = Member {
            org_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
            email: profile.email.clone(),
            name: profile.name.clone(),
            role: invitation.role,
            joined_at: self.clock.now(),
        };
        match self
            .table
            .write(
                vec![
                    WriteOp::delete(key).when(Condition::Exists),
                    WriteOp::put(self.member_item(&member)?).when(Condition::NotExists),
                ]
                .into_iter()
                .chain(owner_count_change(org_id, None, Some(member.role)))
                .collect(),
            )
            .await
        {
            Ok(()) => {}
            Err(TableError::ConditionFailed { index: 1, .. }) => {
                return Err(AccountsError::Conflict);
            }
            Err(TableError::ConditionFailed { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                &[user_id, &invitation.invited_by],
                Some(org_id),
                AuditEvent::new(user_id, "member.joined").target(invitation.role.as_str()),
            )
            .await?;
        Ok(member)
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
        self.gate(user_id).await?;
        let access = self.access(user_id, org_id, Role::Admin).await?;
        let mut member = self
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
        self.table.write(ops).await.map_err(|e| match e {
            TableError::ConditionFailed { index: 1, .. } => last_owner(),
            TableError::ConditionFailed { .. } => AccountsError::Conflict,
            other => other.into(),
        })?;
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
        self.gate(user_id).await?;
        let needed = if user_id == member_id {
            Role::Viewer
        } else {
            Role::Admin
        };
        let access = self.access(user_id, org_id, needed).await?;
        let member = self
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
        self.table.write(ops).await.map_err(|e| match e {
            TableError::ConditionFailed { index: 1, .. } => last_owner(),
            TableError::ConditionFailed { .. } => AccountsError::Conflict,
            other => other.into(),
        })?;
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
