//! The notifications worker on both faces: one notification and one email per event and user
//! however often the message comes, each user's preferences obeyed, a mail outage retried
//! without a second notification, and an organisation's owners and admins told of what its key
//! did.

use std::sync::{Arc, Mutex};

use amanar_accounts::access::Role;
use amanar_accounts::members::Members;
use amanar_accounts::policy::AccountType;
use amanar_accounts::profile::{Preferences, Profile, Profiles};
use amanar_accounts::{IdentityProvider, OrgAccess};
use amanar_core::mail::{MailError, Mailer};
use amanar_core::messages::{NotificationKind, Notify, Recipient};
use amanar_core::table::{Table, WriteOp, items};
use amanar_core::{Clock, JobError, SystemClock, keys};
use amanar_notifications::store::Notifications;
use amanar_notifications::worker::{DeliveryState, deliver};
use amanar_testkit::{both_faces, namespace};
use chrono::Utc;

/// A mailer that records what it sent and fails while told to.
#[derive(Default)]
struct Outbox {
    sent: Mutex<Vec<(String, String, String)>>,
    failing: Mutex<Option<MailError>>,
    /// Each send takes this long (a provider's round trip), so copies can overlap.
    slow: Mutex<Option<std::time::Duration>>,
}

#[async_trait::async_trait]
impl Mailer for Outbox {
    async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), MailError> {
        let slow = *self.slow.lock().unwrap();
        if let Some(slow) = slow {
            tokio::time::sleep(slow).await;
        }
        if let Some(error) = self.failing.lock().unwrap().clone() {
            return Err(error);
        }
        self.sent
            .lock()
            .unwrap()
            .push((to.into(), subject.into(), text.into()));
        Ok(())
    }
}

impl Outbox {
    fn to(&self, to: &str) -> Vec<String> {
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .filter(|(t, _, _)| t == to)
            .map(|(_, s, _)| s.clone())
            .collect()
    }
}

async fn state(table: Arc<dyn Table>) -> (DeliveryState, Arc<Outbox>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let idp: Arc<dyn IdentityProvider> = Arc::new(
        amanar_local_idp::LocalIdentity::open(
            table.clone(),
            clock.clone(),
            "http://127.0.0.1:3000",
            b"notifications-test-secret-0123456789",
        )
        .await
        .unwrap(),
    );
    let outbox = Arc::new(Outbox::default());
    let state = DeliveryState {
        notifications: Notifications::new(table.clone()),
        profiles: Profiles::new(idp.clone(), table.clone(), clock.clone()),
        members: Arc::new(Members::new(
            OrgAccess::new(idp, table.clone(), clock.clone()),
            table,
            clock,
        )),
        mailer: outbox.clone(),
        public_url: Some("https://app.example".into()),
    };
    (state, outbox)
}

/// A user with a profile; `change` sets their preferences. Returns (user id, email).
async fn user(table: &Arc<dyn Table>, change: impl FnOnce(&mut Preferences)) -> (String, String) {
    let id = format!("usr_{}", namespace());
    let email = format!("{id}@notify.example");
    let mut preferences = Preferences::default();
    change(&mut preferences);
    let now = Utc::now();
    let profile = Profile {
        user_id: id.clone(),
        email: email.clone(),
        name: "Test".into(),
        account_type: AccountType::Business,
        preferences,
        mfa_enabled: false,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let item = items::with_key(&keys::user_profile(&id), &profile).unwrap();
    table.write(vec![WriteOp::put(item)]).await.unwrap();
    (id, email)
}

fn notice(event: &str, kind: NotificationKind, recipient: Recipient) -> Notify {
    Notify {
        event: event.into(),
        kind,
        recipient,
        title: "Your order is complete".into(),
        body: "3 t of a forest".into(),
        link: Some("/v1/orders/ord_1".into()),
        at: Utc::now(),
    }
}

async fn each_event_is_one_notification_and_one_email_however_often_it_arrives(
    table: Arc<dyn Table>,
) {
    let (state, outbox) = state(table.clone()).await;
    let (alice, email) = user(&table, |_| {}).await;
    let (bob, _) = user(&table, |_| {}).await;
    let event = format!("order-completed:{}", namespace());
    let message = notice(
        &event,
        NotificationKind::OrderCompleted,
        Recipient::User(alice.clone()),
    );
    for _ in 0..3 {
        deliver(&state, &message, "msg-1").await.unwrap();
    }
    let (listed, _) = state.notifications.of_user(&alice, 10, None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(outbox.to(&email), vec!["Your order is complete".to_owned()]);
    let text = &outbox.sent.lock().unwrap()[0].2.clone();
    assert!(
        text.contains("https://app.example/v1/orders/ord_1"),
        "{text}"
    );

    // Read by its user only, and the first time stands.
    let id = &listed[0].notification_id;
    assert!(
        state
            .notifications
            .read(&bob, id, Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    let read = state
        .notifications
        .read(&alice, id, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let again = state
        .notifications
        .read(&alice, id, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.read_at, again.read_at);
    assert!(
        state
            .notifications
            .of_user(&bob, 10, None)
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

async fn each_users_preferences_choose_the_channels_and_kinds(table: Arc<dyn Table>) {
    let (state, outbox) = state(table.clone()).await;
    let (app_only, app_only_email) = user(&table, |p| p.notifications.email = false).await;
    let (mail_only, mail_only_email) = user(&table, |p| p.notifications.in_app = false).await;
    let (muted, muted_email) = user(&table, |p| {
        p.notifications.muted = vec![NotificationKind::OrderExpired]
    })
    .await;
    for who in [&app_only, &mail_only, &muted] {
        let event = format!("order-expired:{}", namespace());
        let message = notice(
            &event,
            NotificationKind::OrderExpired,
            Recipient::User(who.clone()),
        );
        deliver(&state, &message, "msg-1").await.unwrap();
    }
    let listed = |user: String| {
        let notifications = state.notifications.clone();
        async move {
            notifications
                .of_user(&user, 10, None)
                .await
                .unwrap()
                .0
                .len()
        }
    };
    assert_eq!(listed(app_only.clone()).await, 1);
    assert!(outbox.to(&app_only_email).is_empty());
    assert_eq!(listed(mail_only.clone()).await, 0);
    assert_eq!(outbox.to(&mail_only_email).len(), 1);
    assert_eq!(listed(muted.clone()).await, 0);
    assert!(outbox.to(&muted_email).is_empty());

    // A muted kind is only that kind.
    let message = notice(
        &format!("order-completed:{}", namespace()),
        NotificationKind::OrderCompleted,
        Recipient::User(muted.clone()),
    );
    deliver(&state, &message, "msg-1").await.unwrap();
    assert_eq!(listed(muted).await, 1);
    assert_eq!(outbox.to(&muted_email).len(), 1);
}

async fn a_mail_outage_is_retried_and_a_refusal_is_not(table: Arc<dyn Table>) {
    let (state, outbox) = state(table.clone()).await;
    let (alice, email) = user(&table, |_| {}).await;
    let message = notice(
        &format!("retirement-completed:{}", namespace()),
        NotificationKind::RetirementCompleted,
        Recipient::User(alice.clone()),
    );
    *outbox.failing.lock().unwrap() = Some(MailError::Unavailable("SES is down".into()));
    assert!(matches!(
        deliver(&state, &message, "msg-1").await,
        Err(JobError::Retry(_))
    ));
    // The in-app notification is there already; the email waits for the retry.
    assert_eq!(
        state
            .notifications
            .of_user(&alice, 10, None)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    *outbox.failing.lock().unwrap() = None;
    deliver(&state, &message, "msg-1").await.unwrap();
    deliver(&state, &message, "msg-1").await.unwrap();
    assert_eq!(outbox.to(&email).len(), 1);
    assert_eq!(
        state
            .notifications
            .of_user(&alice, 10, None)
            .await
            .unwrap()
            .0
            .len(),
        1
    );

    let refused = notice(
        &format!("order-completed:{}", namespace()),
        NotificationKind::OrderCompleted,
        Recipient::User(alice.clone()),
    );
    *outbox.failing.lock().unwrap() = Some(MailError::Refused("suppressed".into()));
    deliver(&state, &refused, "msg-1").await.unwrap();
    *outbox.failing.lock().unwrap() = None;
    deliver(&state, &refused, "msg-1").await.unwrap();
    assert_eq!(
        outbox.to(&email).len(),
        1,
        "a refused email is not sent again"
    );
}

async fn an_organisations_owners_and_admins_are_told_and_nobody_else(table: Arc<dyn Table>) {
    let (state, outbox) = state(table.clone()).await;
    let org = format!("org_{}", namespace());
    let mut emails = Vec::new();
    for role in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
        let (id, email) = user(&table, |_| {}).await;
        let member = amanar_accounts::members::Member {
            org_id: org.clone(),
            user_id: id.clone(),
            email: email.clone(),
            name: "Member".into(),
            role,
            joined_at: Utc::now(),
        };
        let item = items::with_key(&keys::org_member(&org, &id), &member).unwrap();
        table.write(vec![WriteOp::put(item)]).await.unwrap();
        emails.push(email);
    }
    let message = notice(
        &format!("order-completed:{}", namespace()),
        NotificationKind::OrderCompleted,
        Recipient::OrgManagers(org),
    );
    deliver(&state, &message, "msg-1").await.unwrap();
    let told: Vec<usize> = emails.iter().map(|e| outbox.to(e).len()).collect();
    assert_eq!(told, vec![1, 1, 0, 0]);
}

async fn a_user_without_a_profile_or_account_is_skipped(table: Arc<dyn Table>) {
    let (state, outbox) = state(table).await;
    let message = notice(
        &format!("order-completed:{}", namespace()),
        NotificationKind::OrderCompleted,
        Recipient::User(format!("usr_{}", namespace())),
    );
    deliver(&state, &message, "msg-1").await.unwrap();
    assert!(outbox.sent.lock().unwrap().is_empty());
}

/// Copies of one notice in one batch run at once: exactly one sends the email. A claim whose
/// delivery died before recording the send is taken back by that message's redelivery, and by
/// any copy once it lapsed.
async fn copies_arriving_at_once_send_one_email_and_a_dead_claim_is_taken_over(
    table: Arc<dyn Table>,
) {
    use amanar_notifications::store::{EMAIL_CLAIM, EmailState, EmailTurn, notification_id};
    let (state, outbox) = state(table.clone()).await;
    let (alice, email) = user(&table, |_| {}).await;
    let event = format!("order-completed:{}", namespace());
    let message = notice(
        &event,
        NotificationKind::OrderCompleted,
        Recipient::User(alice.clone()),
    );
    *outbox.slow.lock().unwrap() = Some(std::time::Duration::from_millis(50));
    let copies = tokio::join!(
        deliver(&state, &message, "msg-a"),
        deliver(&state, &message, "msg-b"),
        deliver(&state, &message, "msg-c"),
        deliver(&state, &message, "msg-d"),
    );
    // The copies that met the claim are retried, and then find the email sent.
    for (delivered, id) in [copies.0, copies.1, copies.2, copies.3]
        .into_iter()
        .zip(["msg-a", "msg-b", "msg-c", "msg-d"])
    {
        if let Err(error) = delivered {
            assert!(matches!(error, JobError::Retry(_)), "{error}");
            deliver(&state, &message, id).await.unwrap();
        }
    }
    assert_eq!(
        outbox.to(&email).len(),
        1,
        "one email for four copies at once"
    );
    let id = notification_id(&event, &alice);
    let stored = state.notifications.get(&id).await.unwrap().unwrap();
    assert_eq!((stored.email, stored.email_claim), (EmailState::Sent, None));

    // A new notice whose email the delivery `by` claimed at `at`, and died.
    let claimed = |by: &'static str, at: chrono::DateTime<Utc>| {
        let (state, alice) = (&state, &alice);
        async move {
            let event = format!("order-completed:{}", namespace());
            let message = notice(
                &event,
                NotificationKind::OrderCompleted,
                Recipient::User(alice.clone()),
            );
            let recorded = state
                .notifications
                .record(&message, alice, true, true)
                .await
                .unwrap();
            let turn = state
                .notifications
                .claim_email(&recorded, by, at)
                .await
                .unwrap();
            assert!(matches!(turn, EmailTurn::Send { .. }), "{turn:?}");
            message
        }
    };

    // A delivery that claimed and died: another copy leaves it to it, its redelivery sends.
    *outbox.slow.lock().unwrap() = None;
    let message = claimed("msg-dead", Utc::now()).await;
    assert!(matches!(
        deliver(&state, &message, "msg-copy").await,
        Err(JobError::Retry(_))
    ));
    assert_eq!(
        outbox.to(&email).len(),
        1,
        "the live claim is the dead delivery's: the copy looks again later"
    );
    deliver(&state, &message, "msg-dead").await.unwrap();
    assert_eq!(
        outbox.to(&email).len(),
        2,
        "its redelivery takes its claim back"
    );
    deliver(&state, &message, "msg-copy").await.unwrap();
    assert_eq!(outbox.to(&email).len(), 2);

    // A lapsed claim is anyone's.
    let message = claimed("msg-lost", Utc::now() - EMAIL_CLAIM * 2).await;
    deliver(&state, &message, "msg-redriven").await.unwrap();
    assert_eq!(outbox.to(&email).len(), 3);
}

both_faces!(
    copies_arriving_at_once_send_one_email_and_a_dead_claim_is_taken_over,
    each_event_is_one_notification_and_one_email_however_often_it_arrives,
    each_users_preferences_choose_the_channels_and_kinds,
    a_mail_outage_is_retried_and_a_refusal_is_not,
    an_organisations_owners_and_admins_are_told_and_nobody_else,
    a_user_without_a_profile_or_account_is_skipped,
);
