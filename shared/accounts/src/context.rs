//! Accounts' registration: the state its handlers share, its four HTTP functions and the API-key
//! scopes it declares.

use std::sync::Arc;

use amanar_core::mail::Mailer;
use amanar_core::{Clock, DepsError, FromDeps, Need, Provide, Table};
use amanar_http::scope::KnownScopes;
use amanar_http::{Context, HttpFunction, Scope, Tag};
use axum::extract::FromRef;

use crate::access::OrgAccess;
use crate::identity::IdentityProvider;
use crate::orgs::Orgs;
use crate::service::Accounts;
use crate::social::{Social, SocialSettings};

/// API-key scopes of an organisation's own data.
pub const ORGS_READ: Scope = Scope::new("orgs:read");
pub const MEMBERS_READ: Scope = Scope::new("members:read");
pub const AUDIT_READ: Scope = Scope::new("audit:read");

/// Every API-key scope accounts declares.
pub const SCOPES: &[Scope] = &[ORGS_READ, MEMBERS_READ, AUDIT_READ];

pub const TAG: Tag = Tag {
    name: "accounts",
    description: "Registration, login, sessions, profiles and roles",
};

/// What accounts' handlers use: the account use cases, social login and organisations.
#[derive(Clone)]
pub struct AccountsState {
    pub accounts: Arc<Accounts>,
    pub social: Arc<Social>,
    pub orgs: Arc<Orgs>,
}

impl<D> FromDeps<D> for AccountsState
where
    D: Provide<Arc<dyn IdentityProvider>>
        + Provide<Arc<dyn Table>>
        + Provide<Arc<dyn Clock>>
        + Provide<Arc<dyn Mailer>>
        + Provide<SocialSettings>
        + Provide<KnownScopes>
        + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        let (idp, table, clock) = (
            deps.need::<Arc<dyn IdentityProvider>>().await?,
            deps.need::<Arc<dyn Table>>().await?,
            deps.need::<Arc<dyn Clock>>().await?,
        );
        let accounts = Arc::new(Accounts::new(idp.clone(), table.clone(), clock.clone()));
        let social = Arc::new(Social::from_settings(
            deps.need::<SocialSettings>().await?,
            accounts.clone(),
            table.clone(),
            clock.clone(),
        ));
        let orgs = Arc::new(Orgs::new(
            OrgAccess::new(idp, table.clone(), clock.clone()),
            table,
            clock,
            deps.need::<Arc<dyn Mailer>>().await?,
            deps.need::<KnownScopes>().await?,
        ));
        Ok(Self {
            accounts,
            social,
            orgs,
        })
    }
}

impl FromRef<AccountsState> for Arc<Accounts> {
    fn from_ref(state: &AccountsState) -> Self {
        state.accounts.clone()
    }
}

impl FromRef<AccountsState> for Arc<Social> {
    fn from_ref(state: &AccountsState) -> Self {
        state.social.clone()
    }
}

impl FromRef<AccountsState> for Arc<Orgs> {
    fn from_ref(state: &AccountsState) -> Self {
        state.orgs.clone()
    }
}

/// `api-auth`: registration, login, sessions, password reset, social login.
pub const AUTH: HttpFunction<AccountsState> = HttpFunction {
    name: "api-auth",
    routes: crate::api::auth_router,
};

/// `api-me`: the caller's profile, MFA, invitations and audit log.
pub const ME: HttpFunction<AccountsState> = HttpFunction {
    name: "api-me",
    routes: || crate::api::me_router().merge(crate::api_orgs::me_extras_router()),
};

/// `api-orgs`: organisations, members, invitations, audit logs and API keys.
pub const ORGS: HttpFunction<AccountsState> = HttpFunction {
    name: "api-orgs",
    routes: crate::api_orgs::orgs_router,
};

/// `api-admin-users`: platform roles.
pub const ADMIN_USERS: HttpFunction<AccountsState> = HttpFunction {
    name: "api-admin-users",
    routes: crate::api::admin_router,
};

/// Accounts' registration.
pub fn context<D>() -> Context<D>
where
    AccountsState: FromDeps<D>,
    D: Sync + 'static,
{
    Context::new("accounts", TAG, SCOPES)
        .http(AUTH)
        .http(ME)
        .http(ORGS)
        .http(ADMIN_USERS)
}
