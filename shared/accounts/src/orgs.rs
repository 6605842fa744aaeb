//! Organisations: creating and renaming them, enterprise child organisations, invitations by email
//! and their acceptance, and the organisation's API keys.
//!
//! Every access goes through [`OrgAccess`] (`access.rs`); members and their roles are in
//! `members.rs`.

use std::sync::Arc;

use amanar_core::table::{Condition, Index, Query, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, Cursor, keys, new_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Access, OrgAccess, Role, forbidden, not_found};
use crate::apikeys::{ApiKey, ApiKeyStore, KeyError};
use crate::audit::{Audit, AuditEvent};
use crate::members::{Member, Members, OWNER_COUNT, member_item, owner_count_change};
use crate::policy::{self, AccountType};
use crate::service::AccountsError;

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
pub struct Invitation {
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One page of a list, with the cursor of the next.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

pub struct Orgs {
    /// The access checks every use case starts with.
    pub access: OrgAccess,
    pub members: Members,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    mailer: Arc<dyn amanar_core::mail::Mailer>,
    audit: Audit,
    pub keys: ApiKeyStore,
    /// Every scope an API key may be granted (what the contexts declare).
    scopes: amanar_http::scope::KnownScopes,
}

impl Orgs {
    /// `mailer` sends invitations: the local mailbox in the local runtime, SES in AWS.
    pub fn new(
        access: OrgAccess,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        mailer: Arc<dyn amanar_core::mail::Mailer>,
        scopes: amanar_http::scope::KnownScopes,
    ) -> Self {
        Self {
            scopes,
            audit: Audit::new(table.clone(), clock.clone()),
            keys: ApiKeyStore::new(table.clone(), clock.clone()),
            members: Members::new(access.clone(), table.clone(), clock.clone()),
            access,
            table,
            clock,
            mailer,
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
        self.access.gate(user_id).await?;
        self.access.access(user_id, org_id, Role::Admin).await?;
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
        self.access.gate(user_id).await?;
        self.access.access(user_id, org_id, Role::Admin).await?;
        Ok(self.keys.list(org_id).await?)
    }

    pub async fn revoke_key(
        &self,
        user_id: &str,
        org_id: &str,
        key_id: &str,
    ) -> Result<(), AccountsError> {
        self.access.gate(user_id).await?;
        self.access.access(user_id, org_id, Role::Admin).await?;
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

    /// Creates an organisation owned by the caller; with a parent, a child organisation of an
    /// enterprise the caller administers.
    pub async fn create(
        &self,
        user_id: &str,
        name: &str,
        parent_org_id: Option<&str>,
    ) -> Result<Org, AccountsError> {
        let profile = self.access.gate(user_id).await?;
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
            let access = self.access.access(user_id, parent, Role::Admin).await?;
            let mut depth = 1;
            let mut up = access.org.parent_org_id.clone();
            while let Some(id) = up {
                depth += 1;
                up = self.access.org(&id).await?.and_then(|o| o.parent_org_id);
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
                WriteOp::put(member_item(&owner)?).when(Condition::NotExists),
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
        self.access.gate(user_id).await?;
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
        self.access.gate(user_id).await?;
        self.access.access(user_id, org_id, Role::Viewer).await
    }

    pub async fn rename(
        &self,
        user_id: &str,
        org_id: &str,
        name: &str,
    ) -> Result<Org, AccountsError> {
        self.access.gate(user_id).await?;
        let mut org = self.access.access(user_id, org_id, Role::Admin).await?.org;
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

    /// Invites an email to the organisation with a role; the invitee accepts after logging in.
    pub async fn invite(
        &self,
        user_id: &str,
        org_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Invitation, AccountsError> {
        self.access.gate(user_id).await?;
        let access = self.access.access(user_id, org_id, Role::Admin).await?;
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
        let profile = self.access.profiles.get(user_id).await?;
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
        let profile = self.access.gate(user_id).await?;
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
                    WriteOp::put(member_item(&member)?).when(Condition::NotExists),
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
}
