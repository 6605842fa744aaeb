//! The consumer of the `notifications` queue: for each recipient of a message, one in-app
//! notification and one email, as that user's preferences say.
//!
//! Delivery is at least once and each step is idempotent: the notification's id is derived from
//! the event and the user, so a copy of the message finds the record the first copy wrote. The
//! email goes out under a claim: one delivery turns the record from `pending` to `sending` with a
//! conditional write, sends, and records `sent`; a copy arriving meanwhile (the pipeline's
//! batches run concurrently) is retried later, and finds it sent (or, if that delivery died,
//! its claim lapsed and takes it). A crash between the send and the record
//! sends the email again when the claiming message is redelivered (the one duplicate left, as
//! with any mail system without a provider-side idempotency key); it never loses one.

use std::sync::Arc;

use amanar_accounts::access::Role;
use amanar_accounts::members::Members;
use amanar_accounts::profile::Profiles;
use amanar_accounts::service::AccountsError;
use amanar_accounts::{IdentityProvider, OrgAccess};
use amanar_core::context::Consumer;
use amanar_core::mail::{MailError, Mailer};
use amanar_core::messages::{JobMessage, Notify, Recipient};
use amanar_core::{
    Clock, DepsError, FromDeps, JobError, Need, Provide, QueueName, Received, Table,
};

use crate::store::{EmailState, EmailTurn, Notifications};

/// What the consumer uses: the store, the accounts' profiles and members, and the mailer.
#[derive(Clone)]
pub struct DeliveryState {
    pub notifications: Notifications,
    pub profiles: Profiles,
    pub members: Arc<Members>,
    pub mailer: Arc<dyn Mailer>,
    /// Where links in emails point (`https://app.example.com`); absent, emails name the API path.
    pub public_url: Option<String>,
}

/// Where emailed links point, configured (`AMANAR_PUBLIC_URL`).
#[derive(Debug, Clone, Default)]
pub struct PublicUrl(pub Option<String>);

impl<D> FromDeps<D> for DeliveryState
where
    D: Provide<Arc<dyn IdentityProvider>>
        + Provide<Arc<dyn Table>>
        + Provide<Arc<dyn Clock>>
        + Provide<Arc<dyn Mailer>>
        + Provide<PublicUrl>
        + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        let (idp, table, clock) = (
            deps.need::<Arc<dyn IdentityProvider>>().await?,
            deps.need::<Arc<dyn Table>>().await?,
            deps.need::<Arc<dyn Clock>>().await?,
        );
        Ok(Self {
            notifications: Notifications::new(table.clone()),
            profiles: Profiles::new(idp.clone(), table.clone(), clock.clone()),
            members: Arc::new(Members::new(
                OrgAccess::new(idp, table.clone(), clock.clone()),
                table,
                clock,
            )),
            mailer: deps.need::<Arc<dyn Mailer>>().await?,
            public_url: deps.need::<PublicUrl>().await?.0,
        })
    }
}

/// The consumer of the `notifications` queue.
pub const NOTIFICATIONS: Consumer<DeliveryState> = Consumer {
    function: "worker-notifications",
    queue: QueueName::Notifications,
    handle: |state, message| Box::pin(handle(state, message)),
};

async fn handle(state: &DeliveryState, received: &Received) -> Result<(), JobError> {
    let message = Notify::from_body(&received.body).map_err(JobError::Poison)?;
    deliver(state, &message, &received.id).await
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

/// The users a message goes to: one user, or an organisation's owners and admins.
async fn recipients(state: &DeliveryState, recipient: &Recipient) -> Result<Vec<String>, JobError> {
    match recipient {
        Recipient::User(user) => Ok(vec![user.clone()]),
        Recipient::OrgManagers(org) => {
            let mut users = Vec::new();
            let mut cursor = None;
            loop {
                let page = state.members.list(org, 100, cursor).await.map_err(retry)?;
                users.extend(
                    page.items
                        .into_iter()
                        .filter(|m| matches!(m.role, Role::Owner | Role::Admin))
                        .map(|m| m.user_id),
                );
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Ok(users),
                }
            }
        }
    }
}

/// Delivers a notification to each of its recipients, as the queue delivery `delivery` (the
/// message's id: its redeliveries share it, copies of the notice do not). A failure for one (the
/// mail provider down) retries the message; the others' deliveries are already recorded and not
/// repeated.
pub async fn deliver(
    state: &DeliveryState,
    message: &Notify,
    delivery: &str,
) -> Result<(), JobError> {
    let mut failed = None;
    for user in recipients(state, &message.recipient).await? {
        if let Err(e) = deliver_to(state, message, &user, delivery).await {
            tracing::warn!(event = %message.event, user = %user, error = %e, "notification not delivered; retried");
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn deliver_to(
    state: &DeliveryState,
    message: &Notify,
    user: &str,
    delivery: &str,
) -> Result<(), JobError> {
    let profile = match state.profiles.get(user).await {
        Ok(profile) => profile,
        // A deleted account: nobody to tell.
        Err(AccountsError::NotFound) => return Ok(()),
        Err(e) => return Err(retry(e)),
    };
    let wants = &profile.preferences.notifications;
    if !wants.wants(message.kind) || !(wants.in_app || wants.email) {
        return Ok(());
    }
    let notification = state
        .notifications
        .record(message, user, wants.in_app, wants.email)
        .await
        .map_err(retry)?;
    let claim = match state
        .notifications
        .claim_email(&notification, delivery, chrono::Utc::now())
        .await
        .map_err(retry)?
    {
        EmailTurn::Send { claim } => claim,
        EmailTurn::Done => return Ok(()),
        EmailTurn::Elsewhere => {
            return Err(JobError::Retry(format!(
                "another delivery is sending the email of {}",
                notification.notification_id
            )));
        }
    };
    let mut text = message.body.clone();
    if let Some(link) = &message.link {
        let base = state
            .public_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        text.push_str(&format!("\n\n{base}{link}"));
    }
    text.push_str(
        "\n\nYou get this email because of your notification settings (PATCH /v1/me, preferences.notifications).",
    );
    let outcome = match state
        .mailer
        .send(&profile.email, &message.title, &text)
        .await
    {
        Ok(()) => EmailState::Sent,
        Err(MailError::Refused(reason)) => {
            tracing::warn!(notification = %notification.notification_id, %reason, "email refused; not retried");
            EmailState::Refused
        }
        Err(MailError::Unavailable(reason)) => return Err(JobError::Retry(reason)),
    };
    state
        .notifications
        .emailed(&notification.notification_id, &claim, outcome)
        .await
        .map_err(retry)
}
