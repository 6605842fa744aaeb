//! Profiles: who a user is to the platform (name, account type, preferences, whether MFA is on),
//! kept in the table beside the identity provider's credentials and rebuilt from the provider when
//! an account never got one.

use std::sync::Arc;

use amanar_core::messages::NotificationKind;
use amanar_core::table::{Condition, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::identity::{IdentityProvider, IdentityUser, NewIdentity};
use crate::policy::{self, AccountType};
use crate::service::{AccountsError, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    #[default]
    Metric,
    Imperial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

/// Which notifications the user wants, by channel and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    pub email: bool,
    pub in_app: bool,
    /// Product news and offers (off unless chosen).
    pub marketing: bool,
    /// Kinds of notification the user wants on no channel: `order_completed`,
    /// `payment_failed`, `order_expired`, `retirement_completed`, `project_status_changed`.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub muted: Vec<NotificationKind>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            email: true,
            in_app: true,
            marketing: false,
            muted: Vec::new(),
        }
    }
}

impl Notifications {
    /// Whether the user wants this kind of notification at all.
    pub fn wants(&self, kind: NotificationKind) -> bool {
        !self.muted.contains(&kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub units: Units,
    /// ISO 4217 code.
    pub currency: String,
    /// BCP 47 language tag, e.g. `en-GB`.
    pub locale: String,
    pub theme: Theme,
    pub notifications: Notifications,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            units: Units::Metric,
            currency: "USD".into(),
            locale: "en".into(),
            theme: Theme::System,
            notifications: Notifications::default(),
        }
    }
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub account_type: AccountType,
    pub preferences: Preferences,
    /// Whether sign-in asks for a TOTP code (enterprise accounts need it for organisations).
    #[serde(default)]
    pub mfa_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change (optimistic concurrency).
    pub version: u64,
}

/// Changes to a profile; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub preferences: Option<PreferencesPatch>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferencesPatch {
    pub units: Option<Units>,
    pub currency: Option<String>,
    pub locale: Option<String>,
    pub theme: Option<Theme>,
    pub notifications: Option<NotificationsPatch>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationsPatch {
    pub email: Option<bool>,
    pub in_app: Option<bool>,
    pub marketing: Option<bool>,
    /// Replaces the muted kinds.
    #[schema(value_type = Option<Vec<String>>)]
    pub muted: Option<Vec<NotificationKind>>,
}

/// Active ISO 4217 currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL";

fn valid_locale(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or("");
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    parts.all(|p| {
        (p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()))
            || (p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()))
            || (p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl ProfilePatch {
    fn apply(self, profile: &mut Profile) -> Result<(), AccountsError> {
        if let Some(name) = self.name {
            profile.name = policy::check_name(&name).map_err(|m| invalid("name", m))?;
        }
        let Some(p) = self.preferences else {
            return Ok(());
        };
        let prefs = &mut profile.preferences;
        if let Some(units) = p.units {
            prefs.units = units;
        }
        if let Some(currency) = p.currency {
            if currency.len() != 3 || !CURRENCIES.split(' ').any(|c| c == currency) {
                return Err(invalid(
                    "preferences.currency",
                    "must be an ISO 4217 currency code such as EUR",
                ));
            }
            prefs.currency = currency;
        }
        if let Some(locale) = p.locale {
            if !valid_locale(&locale) {
                return Err(invalid(
                    "preferences.locale",
                    "must be a BCP 47 language tag such as en-GB",
                ));
            }
            prefs.locale = locale;
        }
        if let Some(theme) = p.theme {
            prefs.theme = theme;
        }
        if let Some(n) = p.notifications {
            let current = &mut prefs.notifications;
            current.email = n.email.unwrap_or(current.email);
            current.in_app = n.in_app.unwrap_or(current.in_app);
            current.marketing = n.marketing.unwrap_or(current.marketing);
            if let Some(mut muted) = n.muted {
                muted.sort_unstable();
                muted.dedup();
                current.muted = muted;
            }
        }
        Ok(())
    }
}

/// Profiles in the table, with the identity provider to rebuild one that is missing.
#[derive(Clone)]
pub struct Profiles {
    idp: Arc<dyn IdentityProvider>,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Profiles {
    pub fn new(
        idp: Arc<dyn IdentityProvider>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { idp, table, clock }
    }

    /// Writes the first profile of an account; one already there is left as it is.
    pub(crate) async fn create(
        &self,
        user_id: &str,
        new: &NewIdentity,
        mfa_enabled: bool,
    ) -> Result<Profile, AccountsError> {
        let now = self.clock.now();
        let profile = Profile {
            user_id: user_id.to_owned(),
            email: new.email.clone(),
            name: new.name.clone(),
            account_type: AccountType::parse(&new.account_type).unwrap_or(AccountType::Individual),
            preferences: Preferences::default(),
            mfa_enabled,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let item = items::with_key(&keys::user_profile(user_id), &profile)?;
        match self
            .table
            .write(vec![WriteOp::put(item).when(Condition::NotExists)])
            .await
        {
            Ok(()) | Err(TableError::ConditionFailed { .. }) => Ok(profile),
            Err(e) => Err(e.into()),
        }
    }

    /// A user's profile, rebuilt from the identity provider if it was never written.
    pub async fn get(&self, user_id: &str) -> Result<Profile, AccountsError> {
        if let Some(item) = self.table.get(&keys::user_profile(user_id)).await? {
            return Ok(items::parse(item)?);
        }
        let user: IdentityUser = match self.idp.user(user_id).await {
            Ok(user) => user,
            // No account: no profile (the notifications worker and the account directory
            // skip such users rather than retrying).
            Err(crate::identity::IdentityError::NoSuchUser) => return Err(AccountsError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let mfa_enabled = user.mfa_enabled;
        let new = NewIdentity {
            email: user.email,
            password: String::new(),
            name: user.name,
            account_type: user.account_type,
        };
        self.create(user_id, &new, mfa_enabled).await
    }

    /// Applies a patch with optimistic concurrency.
    pub async fn update(
        &self,
        user_id: &str,
        patch: ProfilePatch,
    ) -> Result<Profile, AccountsError> {
        let mut profile = self.get(user_id).await?;
        let expected = profile.version;
        patch.apply(&mut profile)?;
        profile.version += 1;
        profile.updated_at = self.clock.now();
        let item = items::with_key(&keys::user_profile(user_id), &profile)?;
        match self
            .table
            .write(vec![
                WriteOp::put(item).when(Condition::Equals("version".into(), expected.into())),
            ])
            .await
        {
            Ok(()) => Ok(profile),
            Err(TableError::ConditionFailed { .. }) => Err(AccountsError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Records whether sign-in asks this user for a TOTP code (the provider already changed).
    pub(crate) async fn set_mfa(
        &self,
        user_id: &str,
        enabled: bool,
    ) -> Result<Profile, AccountsError> {
        self.get(user_id).await?;
        self.table
            .write(vec![
                WriteOp::update(
                    keys::user_profile(user_id),
                    Update::new()
                        .set("mfaEnabled", enabled)
                        .set("updatedAt", self.clock.now().to_rfc3339())
                        .add("version", 1),
                )
                .when(Condition::Exists),
            ])
            .await?;
        self.get(user_id).await
    }
}

/// Other contexts ask profiles for a user's account type (the marketplace: who drafts projects).
#[async_trait::async_trait]
impl amanar_http::auth::AccountDirectory for Profiles {
    async fn account_type(&self, user_id: &str) -> Result<Option<String>, amanar_http::ApiError> {
        match self.get(user_id).await {
            Ok(profile) => Ok(Some(profile.account_type.as_str().to_owned())),
            Err(AccountsError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
