//! Organisation access: who may do what in an organisation, for accounts' own routes and, through
//! [`amanar_http::OrgGuard`], for every other context.
//!
//! A caller who is neither a member of the organisation nor an owner or admin of one of its
//! ancestors gets "not found" (another tenant's resource does not exist for them); a member whose
//! role is too low gets "forbidden". Enterprise accounts without MFA are refused before anything
//! else. [`OrgAccess`] holds only what these checks read, so a context that asks them needs neither
//! the mailer nor the rest of organisations.

use std::sync::Arc;

use amanar_core::table::{Table, items};
use amanar_core::{Clock, keys};
use amanar_http::{ApiError, OrgAction, Principal, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::identity::IdentityProvider;
use crate::members::Member;
use crate::orgs::{MAX_DEPTH, Org};
use crate::policy::AccountType;
use crate::profile::{Profile, Profiles};
use crate::service::AccountsError;

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

/// The caller's standing in an organisation: their own role there, or admin through an ancestor.
#[derive(Debug, Clone)]
pub struct Access {
    pub org: Org,
    pub role: Role,
}

pub(crate) fn not_found() -> AccountsError {
    AccountsError::NotFound
}

pub(crate) fn forbidden(detail: impl Into<String>) -> AccountsError {
    AccountsError::Forbidden {
        slug: "insufficient-role",
        detail: detail.into(),
    }
}

/// The access checks over the table, with the profiles the MFA gate reads.
#[derive(Clone)]
pub struct OrgAccess {
    table: Arc<dyn Table>,
    /// The gate reads a caller's profile; one never written is rebuilt from the identity provider,
    /// as everywhere else in accounts.
    pub(crate) profiles: Profiles,
}

impl OrgAccess {
    pub fn new(
        idp: Arc<dyn IdentityProvider>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            profiles: Profiles::new(idp, table.clone(), clock),
            table,
        }
    }

    /// The caller's profile, refusing enterprise accounts without MFA (they must enable it
    /// before any organisation action).
    pub async fn gate(&self, user_id: &str) -> Result<Profile, AccountsError> {
        let profile = self.profiles.get(user_id).await?;
        if profile.account_type == AccountType::Enterprise && !profile.mfa_enabled {
            return Err(AccountsError::Forbidden {
                slug: "mfa-required",
                detail: "Enterprise accounts must enable MFA (POST /v1/me/mfa/totp) before using organisations.".into(),
            });
        }
        Ok(profile)
    }

    pub(crate) async fn org(&self, org_id: &str) -> Result<Option<Org>, AccountsError> {
        Ok(match self.table.get(&keys::org(org_id)).await? {
            Some(item) => Some(items::parse(item)?),
            None => None,
        })
    }

    pub(crate) async fn membership(
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

    /// Access for a user (through the gate, by role) or an API key (its own organisation, with
    /// `scope`).
    pub async fn access_as(
        &self,
        principal: &Principal,
        org_id: &str,
        needed: Role,
        scope: Scope,
    ) -> Result<Access, AccountsError> {
        match principal {
            Principal::User(caller) => {
                self.gate(&caller.user_id).await?;
                self.access(&caller.user_id, org_id, needed).await
            }
            Principal::Key(key) => {
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

    /// The user's standing in `org_id`, requiring at least `needed`. The gate is the caller's to
    /// pass first ([`Self::gate`]).
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
}

/// Organisation access for the other contexts: viewers and up read, members and up write; an API
/// key acts only on its own organisation and needs the named scope.
#[async_trait::async_trait]
impl amanar_http::OrgGuard for OrgAccess {
    async fn authorize(
        &self,
        principal: &Principal,
        org_id: &str,
        action: OrgAction,
        key_scope: Scope,
    ) -> Result<(), ApiError> {
        let needed = match action {
            OrgAction::Read => Role::Viewer,
            OrgAction::Write => Role::Member,
        };
        self.access_as(principal, org_id, needed, key_scope)
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use amanar_core::table::WriteOp;
    use amanar_http::{ApiKeyCaller, Caller, OrgGuard};

    use super::*;
    use crate::identity::NewIdentity;
    use crate::members::member_item;
    use crate::testing::{self, Provider, store};

    /// Organisations and memberships written straight to the table, and the profiles the gate
    /// reads, so only the checks themselves are under test.
    struct World {
        access: OrgAccess,
        store: testing::Store,
    }

    impl World {
        fn new(provider: Arc<Provider>) -> Self {
            let store = store();
            let access = OrgAccess::new(provider, store.table.clone(), store.clock.clone());
            Self { access, store }
        }

        async fn profile(&self, user_id: &str, account_type: &str, mfa_enabled: bool) {
            let new = NewIdentity {
                email: format!("{user_id}@example.com"),
                password: String::new(),
                name: format!("User {user_id}"),
                account_type: account_type.to_owned(),
            };
            self.access
                .profiles
                .create(user_id, &new, mfa_enabled)
                .await
                .unwrap();
        }

        async fn org(&self, org_id: &str, parent: Option<&str>) {
            let now = amanar_core::Clock::now(self.store.clock.as_ref());
            let org = Org {
                org_id: org_id.to_owned(),
                name: format!("Org {org_id}"),
                parent_org_id: parent.map(str::to_owned),
                created_by: "someone".into(),
                created_at: now,
                updated_at: now,
            };
            let item = items::with_key(&keys::org(org_id), &org).unwrap();
            self.store
                .table
                .write(vec![WriteOp::put(item)])
                .await
                .unwrap();
        }

        async fn member(&self, org_id: &str, user_id: &str, role: Role) {
            let member = Member {
                org_id: org_id.to_owned(),
                user_id: user_id.to_owned(),
                email: format!("{user_id}@example.com"),
                name: format!("User {user_id}"),
                role,
                joined_at: amanar_core::Clock::now(self.store.clock.as_ref()),
            };
            let item = member_item(&member).unwrap();
            self.store
                .table
                .write(vec![WriteOp::put(item)])
                .await
                .unwrap();
        }
    }

    fn user(user_id: &str) -> Principal {
        Principal::User(Caller {
            user_id: user_id.to_owned(),
            groups: Vec::new(),
        })
    }

    fn key(org_id: &str, scopes: &[&str]) -> Principal {
        Principal::Key(ApiKeyCaller {
            key_id: "key_1".into(),
            org_id: org_id.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn slug(error: AccountsError) -> &'static str {
        match error {
            AccountsError::Forbidden { slug, .. } => slug,
            other => panic!("expected forbidden, got {other:?}"),
        }
    }

    const ROLES: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    #[tokio::test]
    async fn each_role_reaches_what_needs_it_or_less_and_is_forbidden_the_rest() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        for (i, role) in ROLES.into_iter().enumerate() {
            let user_id = format!("usr_{i}");
            world.member("org_a", &user_id, role).await;
            for needed in ROLES {
                let answer = world.access.access(&user_id, "org_a", needed).await;
                if role >= needed {
                    let access = answer.unwrap();
                    assert_eq!((access.role, access.org.org_id.as_str()), (role, "org_a"));
                } else {
                    assert_eq!(slug(answer.unwrap_err()), "insufficient-role");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_lower_role_is_told_which_role_it_needs() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        world.member("org_a", "usr_viewer", Role::Viewer).await;
        let refused = world
            .access
            .access("usr_viewer", "org_a", Role::Admin)
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            AccountsError::Forbidden {
                slug: "insufficient-role",
                detail: "This needs the admin role or higher in the organisation; you are viewer."
                    .into(),
            }
        );
    }

    #[tokio::test]
    async fn another_tenants_organisation_and_a_missing_one_are_both_not_found() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        world.org("org_b", None).await;
        world.member("org_a", "usr_a", Role::Owner).await;
        world.member("org_b", "usr_b", Role::Owner).await;
        for org_id in ["org_b", "org_missing"] {
            let refused = world
                .access
                .access("usr_a", org_id, Role::Viewer)
                .await
                .unwrap_err();
            assert_eq!(refused, AccountsError::NotFound, "{org_id}");
        }
    }

    #[tokio::test]
    async fn an_admin_of_a_parent_administers_its_children_and_their_children() {
        let world = World::new(Provider::with([]));
        world.org("org_parent", None).await;
        world.org("org_child", Some("org_parent")).await;
        world.org("org_grandchild", Some("org_child")).await;
        world.member("org_parent", "usr_admin", Role::Admin).await;
        // A lower direct role in the child does not hide the inherited one.
        world.member("org_child", "usr_admin", Role::Viewer).await;
        for org_id in ["org_child", "org_grandchild"] {
            let access = world
                .access
                .access("usr_admin", org_id, Role::Admin)
                .await
                .unwrap();
            assert_eq!(access.role, Role::Admin, "{org_id}");
            let refused = world
                .access
                .access("usr_admin", org_id, Role::Owner)
                .await
                .unwrap_err();
            assert_eq!(slug(refused), "insufficient-role", "{org_id}");
        }
    }

    #[tokio::test]
    async fn a_member_of_a_parent_does_not_see_its_children() {
        let world = World::new(Provider::with([]));
        world.org("org_parent", None).await;
        world.org("org_child", Some("org_parent")).await;
        world.member("org_parent", "usr_member", Role::Member).await;
        let refused = world
            .access
            .access("usr_member", "org_child", Role::Viewer)
            .await
            .unwrap_err();
        assert_eq!(refused, AccountsError::NotFound);
    }

    #[tokio::test]
    async fn an_api_key_reads_only_its_own_organisation_and_only_with_the_scope() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        world.org("org_b", None).await;
        let scope = crate::ORGS_READ;
        let access = world
            .access
            .access_as(&key("org_a", &["orgs:read"]), "org_a", Role::Viewer, scope)
            .await
            .unwrap();
        assert_eq!(
            (access.role, access.org.org_id.as_str()),
            (Role::Viewer, "org_a")
        );
        let elsewhere = world
            .access
            .access_as(&key("org_a", &["orgs:read"]), "org_b", Role::Viewer, scope)
            .await
            .unwrap_err();
        assert_eq!(elsewhere, AccountsError::NotFound);
        let unscoped = world
            .access
            .access_as(
                &key("org_a", &["members:read"]),
                "org_a",
                Role::Viewer,
                scope,
            )
            .await
            .unwrap_err();
        assert_eq!(slug(unscoped), amanar_http::scope::INSUFFICIENT_SCOPE);
        let gone = world
            .access
            .access_as(
                &key("org_gone", &["orgs:read"]),
                "org_gone",
                Role::Viewer,
                scope,
            )
            .await
            .unwrap_err();
        assert_eq!(gone, AccountsError::NotFound);
    }

    #[tokio::test]
    async fn an_enterprise_account_without_mfa_is_refused_mfa_required_until_it_enables_it() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        world.member("org_a", "usr_ent", Role::Owner).await;
        world.member("org_a", "usr_mfa", Role::Owner).await;
        world.member("org_a", "usr_biz", Role::Owner).await;
        world.profile("usr_ent", "enterprise", false).await;
        world.profile("usr_mfa", "enterprise", true).await;
        world.profile("usr_biz", "business", false).await;
        let refused = world
            .access
            .access_as(&user("usr_ent"), "org_a", Role::Viewer, crate::ORGS_READ)
            .await
            .unwrap_err();
        assert_eq!(slug(refused), "mfa-required");
        for user_id in ["usr_mfa", "usr_biz"] {
            world
                .access
                .access_as(&user(user_id), "org_a", Role::Owner, crate::ORGS_READ)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_profile_never_written_is_rebuilt_from_the_identity_provider_for_the_gate() {
        let world = World::new(Provider::with([testing::user(
            "usr_ent",
            "enterprise",
            false,
        )]));
        let refused = world.access.gate("usr_ent").await.unwrap_err();
        assert_eq!(slug(refused), "mfa-required");
        let kept = world.access.profiles.get("usr_ent").await.unwrap();
        assert_eq!(
            kept.created_at,
            amanar_core::Clock::now(world.store.clock.as_ref())
        );
        let unknown = world.access.gate("usr_nobody").await.unwrap_err();
        assert_eq!(unknown, AccountsError::NotFound, "no account, no profile");
    }

    #[tokio::test]
    async fn the_guard_lets_viewers_read_and_needs_a_member_to_write() {
        let world = World::new(Provider::with([]));
        world.org("org_a", None).await;
        world.member("org_a", "usr_viewer", Role::Viewer).await;
        world.member("org_a", "usr_member", Role::Member).await;
        world.profile("usr_viewer", "business", false).await;
        world.profile("usr_member", "business", false).await;
        let guard: &dyn OrgGuard = &world.access;
        let scope = crate::ORGS_READ;
        guard
            .authorize(&user("usr_viewer"), "org_a", OrgAction::Read, scope)
            .await
            .unwrap();
        let refused = guard
            .authorize(&user("usr_viewer"), "org_a", OrgAction::Write, scope)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                ApiError::Forbidden {
                    slug: "insufficient-role",
                    ..
                }
            ),
            "{refused:?}"
        );
        guard
            .authorize(&user("usr_member"), "org_a", OrgAction::Write, scope)
            .await
            .unwrap();
        let hidden = guard
            .authorize(&user("usr_member"), "org_b", OrgAction::Read, scope)
            .await
            .unwrap_err();
        assert!(matches!(hidden, ApiError::NotFound), "{hidden:?}");
    }
}
