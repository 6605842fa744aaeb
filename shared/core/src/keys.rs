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
//! | wrong mailed codes of an email today | `LOGIN#<email>` | `CODE_FAILURES` | | |
//! | wrong TOTP codes of a user | `USER#<userId>` | `MFA_FAILURES` | | |
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
//! | rate-limit window | `RATE#<user:id, key:id or addr:ip>` | `<window start>` | | |
//! | TOTP challenge's email and user (second-factor limit) | `MFA#<sha256 of session>` | `EMAIL` | | |
//! | social login state | `SOCIAL#STATE#<sha256 of state>` | `STATE` | | |
//! | footprint | `FOOTPRINT#<footprintId>` | `FOOTPRINT` | `FOOTPRINTS#<owner>` / `<period start>#<footprintId>` while current | |
//! | an owner's current footprint periods | `FOOTPRINTS#<owner>` | `PERIODS` | | |
//! | activity import | `IMPORT#<importId>` | `IMPORT` | `ORG#<orgId>#IMPORTS` / `<importId>` | `IMPORTS#open` / `<updatedAt>#<importId>` until final |
//! | credit issuance | `ISSUANCE#<issuanceId>` | `ISSUANCE` | `PROJECT#<projectId>#ISSUANCES` / `<issuedAt>#<issuanceId>` | |
//! | credit block | `ISSUANCE#<issuanceId>` | `BLOCK#<first, 20 digits>` | `ACCOUNT#<account>` / `<issuanceId>#<first, 20 digits>` | |
//! | serial range claimed by an issuance | `SERIALS#<namespace>` | `RANGE#<first, 20 digits>` | | |
//! | serial namespace head (serialises claims) | `SERIALS#<namespace>` | `HEAD` | | |
//! | ledger movement (made once) | `MOVE#<movementId>` | `MOVE` | | |
//! | project | `PROJECT#<projectId>` | `PROJECT` | `OWNER#<owner>#PROJECTS` / `<createdAt>#<projectId>` | `VERIFICATION#<status>` / `<movedAt>#<projectId>` while submitted or under review |
//! | project history entry | `PROJECT#<projectId>` | `HISTORY#<at>#<entryId>` | | |
//! | project document | `PROJECT#<projectId>` | `DOC#<documentId>` | | |
//! | order | `ORDER#<orderId>` | `ORDER` | `OWNER#<buyer>#ORDERS` / `<createdAt>#<orderId>` | `ORDERS#open` / `<updatedAt>#<orderId>` until final |
//! | holding (one order line's credits) | `HOLDING#<holdingId>` | `HOLDING` | `OWNER#<owner>#HOLDINGS` / `<acquiredAt>#<holdingId>` | |
//! | retirement (a claim on a holding's credits) | `RETIREMENT#<retirementId>` | `RETIREMENT` | `OWNER#<owner>#RETIREMENTS` / `<requestedAt>#<retirementId>` | `RETIREMENTS#open` / `<updatedAt>#<retirementId>` while not completed |
//! | notification (one per event and user) | `NOTIFICATION#<notificationId>` | `NOTIFICATION` | `USER#<userId>#NOTIFICATIONS` / `<createdAt>#<notificationId>` when shown in the app | |
//! | buyer rating of a project (one per user) | `PROJECT#<projectId>` | `RATING#<ratingId: digest of project and user>` | | |
//! | a project's buyer-rating totals (count, stars) | `PROJECT#<projectId>` | `RATINGS` | | `CATALOGUE#<n>` / `<updatedAt>#RATINGS#<projectId>` |
//! | verified buyer of a project (a completed order) | `PROJECT#<projectId>` | `BUYER#<userId>` | | |
//! | a buyer's customer at a payment provider | `PAYCUSTOMER#<provider>#<owner>` | `CUSTOMER` | | |
//! | payment event (handled once) | `PAYEVENT#<provider>#<eventId>` | `EVENT` | | |
//! | local simulator payment | `LOCALPAY#<paymentId>` | `PAYMENT` | | |
//!
//! A footprint owner and an audit stream are `USER#<userId>` or `ORG#<orgId>`.
//!
//! A function returning a [`Key`] names an item; one returning an [`IndexKey`] says where that item
//! is listed in a GSI (callers add it with [`IndexKey::insert_into`] or `Update::set_index`); one
//! returning a `String` names a partition to query. Times in sort keys are
//! [`sortable_time`]s, so a cutoff compares as text.

use chrono::{DateTime, NaiveDate, Utc};

use crate::table::{Index, IndexKey, Key};

/// A timestamp whose text order is its time order (RFC 3339, microseconds, `Z`): the time part of
/// the pending-upload and open-import sort keys, and the cutoff the sweepers compare them with.
pub fn sortable_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

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

/// An upload's entry among its owner's uploads.
pub fn upload_of_owner(owner: &str, upload_id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        uploads_of_owner(owner),
        format!("UPLOAD#{upload_id}"),
    )
}

/// An unfinished record's entry in its workflow's GSI2 partition `open` (such as
/// [`PENDING_UPLOADS`]), by when it last moved, so a sweeper finds the ones that stopped.
pub fn unfinished(open: &str, moved_at: DateTime<Utc>, id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi2,
        open,
        format!("{}#{id}", sortable_time(moved_at)),
    )
}

pub fn user_profile(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

pub fn login_failures(email: &str) -> Key {
    Key::new(format!("LOGIN#{email}"), "FAILURES")
}

/// Wrong mailed codes (verification, reset) checked for an email today.
pub fn code_failures(email: &str) -> Key {
    Key::new(format!("LOGIN#{email}"), "CODE_FAILURES")
}

/// Wrong second-factor answers of a user (their own count: a right password does not clear it).
pub fn mfa_failures(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "MFA_FAILURES")
}

pub fn idp_credentials(email: &str) -> Key {
    Key::new(format!("IDP#EMAIL#{email}"), "CREDENTIALS")
}

/// GSI1 partition finding a local IdP user's credentials by user id.
pub fn idp_user(user_id: &str) -> String {
    format!("IDP#USER#{user_id}")
}

/// The credentials' entry in [`idp_user`].
pub fn idp_user_credentials(user_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, idp_user(user_id), "CREDENTIALS")
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

/// One message in a local mailbox; the sort key orders messages by when they were sent.
pub fn mailbox_message(email: &str, sent_at: DateTime<Utc>, message_id: &str) -> Key {
    Key::new(
        mailbox(email),
        format!("{}#{message_id}", sent_at.format("%Y%m%dT%H%M%S%.6fZ")),
    )
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

/// Sort-key prefix of the members in an organisation's partition.
pub const MEMBERS: &str = "MEMBER#";

pub fn org_member(org_id: &str, user_id: &str) -> Key {
    Key::new(org_partition(org_id), format!("{MEMBERS}{user_id}"))
}

pub fn org_invitation(org_id: &str, email: &str) -> Key {
    Key::new(org_partition(org_id), format!("INVITE#{email}"))
}

/// GSI1 partition listing a user's memberships.
pub fn orgs_of_user(user_id: &str) -> String {
    format!("USER#{user_id}#ORGS")
}

/// A membership's entry in [`orgs_of_user`].
pub fn membership_of_user(user_id: &str, org_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, orgs_of_user(user_id), org_id)
}

/// GSI1 partition listing an enterprise's child organisations.
pub fn children_of(org_id: &str) -> String {
    format!("ORG#{org_id}#CHILDREN")
}

/// A child organisation's entry in [`children_of`] its parent.
pub fn child_of(parent_id: &str, org_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, children_of(parent_id), org_id)
}

/// GSI1 partition listing the invitations to an email.
pub fn invitations_of(email: &str) -> String {
    format!("INVITES#{email}")
}

/// An invitation's entry in [`invitations_of`] its email.
pub fn invitation_to(email: &str, org_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, invitations_of(email), org_id)
}

/// Sort-key prefix of the API key listings in an organisation's partition.
pub const API_KEYS: &str = "APIKEY#";

pub fn api_key_listing(org_id: &str, key_id: &str) -> Key {
    Key::new(org_partition(org_id), format!("{API_KEYS}{key_id}"))
}

pub fn api_key_lookup(secret_hash: &str) -> Key {
    Key::new(format!("APIKEY#{secret_hash}"), "KEY")
}

/// GSI1 partition finding an API key's lookup item by key id.
pub fn api_key_by_id(key_id: &str) -> String {
    format!("APIKEY#{key_id}")
}

/// The lookup item's entry in [`api_key_by_id`].
pub fn api_key_id(key_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, api_key_by_id(key_id), "KEY")
}

/// A user's audit stream.
pub fn audit_stream_user(user_id: &str) -> String {
    owner_user(user_id)
}

/// An organisation's audit stream.
pub fn audit_stream_org(org_id: &str) -> String {
    owner_org(org_id)
}

/// Partition of one audit log ([`audit_stream_user`] or [`audit_stream_org`]).
pub fn audit_partition(stream: &str) -> String {
    format!("AUDIT#{stream}")
}

pub fn audit_head(stream: &str) -> Key {
    Key::new(audit_partition(stream), "HEAD")
}

/// Sort-key prefix of the entries in an audit log's partition (the head sorts apart).
pub const AUDIT_ENTRIES: &str = "E#";

pub fn audit_entry(stream: &str, seq: u64) -> Key {
    Key::new(audit_partition(stream), format!("{AUDIT_ENTRIES}{seq:012}"))
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
/// A resource's owner when a user owns it (projects, credit inventories and holdings).
pub fn owner_user(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// A resource's owner when an organisation owns it.
pub fn owner_org(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

pub fn footprint_owner_user(user_id: &str) -> String {
    owner_user(user_id)
}

pub fn footprint_owner_org(org_id: &str) -> String {
    owner_org(org_id)
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

/// A current footprint's entry in [`footprints_of`] its owner: `<period start>#<footprintId>`.
pub fn footprint_in_history(owner: &str, period_start: NaiveDate, footprint_id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        footprints_of(owner),
        format!("{period_start}#{footprint_id}"),
    )
}

/// Lowest sort key in [`footprints_of`] for footprints starting on or after `day`.
pub fn footprints_from(day: NaiveDate) -> String {
    day.to_string()
}

/// Highest sort key in [`footprints_of`] for footprints starting on or before `day`: `~` sorts
/// after every id character. (DynamoDB refuses an empty string in a key condition, so an open end
/// is no condition rather than "".)
pub fn footprints_through(day: NaiveDate) -> String {
    format!("{day}#~")
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

/// An import's entry in [`imports_of_org`].
pub fn import_of_org(org_id: &str, import_id: &str) -> IndexKey {
    IndexKey::new(Index::Gsi1, imports_of_org(org_id), import_id)
}

/// A serial number in a sort key: zero-padded to 20 digits, so text order is number order.
pub fn serial_number(n: u64) -> String {
    format!("{n:020}")
}

pub fn issuance(issuance_id: &str) -> Key {
    Key::new(issuance_partition(issuance_id), "ISSUANCE")
}

/// The partition of an issuance: the issuance item and its credit blocks, by first serial.
pub fn issuance_partition(issuance_id: &str) -> String {
    format!("ISSUANCE#{issuance_id}")
}

/// GSI1 partition listing a project's issuances, oldest first.
pub fn issuances_of_project(project_id: &str) -> String {
    format!("PROJECT#{project_id}#ISSUANCES")
}

/// An issuance's entry in [`issuances_of_project`].
pub fn issuance_of_project(
    project_id: &str,
    issued_at: DateTime<Utc>,
    issuance_id: &str,
) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        issuances_of_project(project_id),
        format!("{}#{issuance_id}", sortable_time(issued_at)),
    )
}

/// Sort-key prefix of the blocks in [`issuance_partition`].
pub const BLOCK_PREFIX: &str = "BLOCK#";

/// A credit block, named by its issuance and first serial (a split keeps the lower part's key).
pub fn credit_block(issuance_id: &str, first: u64) -> Key {
    Key::new(
        issuance_partition(issuance_id),
        format!("{BLOCK_PREFIX}{}", serial_number(first)),
    )
}

/// GSI1 partition listing the blocks an account holds, by issuance and first serial.
pub fn blocks_of_account(account: &str) -> String {
    format!("ACCOUNT#{account}")
}

/// A block's entry in [`blocks_of_account`].
pub fn block_of_account(account: &str, issuance_id: &str, first: u64) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        blocks_of_account(account),
        format!(
            "{}{}",
            blocks_of_issuance_in_account(issuance_id),
            serial_number(first)
        ),
    )
}

/// Sort-key prefix, in [`blocks_of_account`], of an account's blocks of one issuance.
pub fn blocks_of_issuance_in_account(issuance_id: &str) -> String {
    format!("{issuance_id}#")
}

pub fn project(project_id: &str) -> Key {
    Key::new(format!("PROJECT#{project_id}"), "PROJECT")
}

/// GSI1 partition listing an owner's projects (`USER#<id>` or `ORG#<id>`), oldest first.
pub fn projects_of_owner(owner: &str) -> String {
    format!("OWNER#{owner}#PROJECTS")
}

/// A project's entry in [`projects_of_owner`].
pub fn project_of_owner(owner: &str, created_at: DateTime<Utc>, project_id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        projects_of_owner(owner),
        format!("{}#{project_id}", sortable_time(created_at)),
    )
}

/// GSI2 partition of the verification queue: projects in one status, by when they moved there.
pub fn verification_queue(status: &str) -> String {
    format!("VERIFICATION#{status}")
}

/// A project's entry in [`verification_queue`].
pub fn verification_queue_entry(
    status: &str,
    moved_at: DateTime<Utc>,
    project_id: &str,
) -> IndexKey {
    IndexKey::new(
        Index::Gsi2,
        verification_queue(status),
        format!("{}#{project_id}", sortable_time(moved_at)),
    )
}

/// Sort-key prefix of a project's history entries.
pub const PROJECT_HISTORY_PREFIX: &str = "HISTORY#";

/// One move of a project, in time order within its partition.
pub fn project_history(project_id: &str, at: DateTime<Utc>, entry_id: &str) -> Key {
    Key::new(
        project(project_id).pk,
        format!("{PROJECT_HISTORY_PREFIX}{}#{entry_id}", sortable_time(at)),
    )
}

/// Sort-key prefix of a project's documents.
pub const PROJECT_DOCUMENT_PREFIX: &str = "DOC#";

pub fn project_document(project_id: &str, document_id: &str) -> Key {
    Key::new(
        project(project_id).pk,
        format!("{PROJECT_DOCUMENT_PREFIX}{document_id}"),
    )
}

/// A ledger movement's record, by the id its caller chose: a movement is made once.
pub fn ledger_movement(movement_id: &str) -> Key {
    Key::new(format!("MOVE#{movement_id}"), "MOVE")
}

/// The partition of a serial namespace: the ranges issuances claimed in it, and its head.
pub fn serial_namespace(namespace: &str) -> String {
    format!("SERIALS#{namespace}")
}

/// Sort-key prefix of the claimed ranges in [`serial_namespace`].
pub const RANGE_PREFIX: &str = "RANGE#";

/// The range an issuance claimed in a namespace, named by its first serial.
pub fn serial_claim(namespace: &str, first: u64) -> Key {
    Key::new(
        serial_namespace(namespace),
        format!("{RANGE_PREFIX}{}", serial_number(first)),
    )
}

/// The namespace's head: every claim in the namespace moves its version, so two claims that
/// could overlap never both pass their overlap check.
pub fn serial_namespace_head(namespace: &str) -> Key {
    Key::new(serial_namespace(namespace), "HEAD")
}

/// A listing: credits of one issuance offered at a unit price.
pub fn listing(listing_id: &str) -> Key {
    Key::new(format!("LISTING#{listing_id}"), "LISTING")
}

/// Sort-key prefix of a listing's events (created, price changed, paused, resumed, closed).
pub const LISTING_EVENT_PREFIX: &str = "EVENT#";

/// One event of a listing, in time order within its partition.
pub fn listing_event(listing_id: &str, at: DateTime<Utc>, event_id: &str) -> Key {
    Key::new(
        listing(listing_id).pk,
        format!("{LISTING_EVENT_PREFIX}{}#{event_id}", sortable_time(at)),
    )
}

/// GSI1 partition of a project's listings, oldest first.
pub fn listings_of_project(project_id: &str) -> String {
    format!("PROJECT#{project_id}#LISTINGS")
}

/// A listing's entry in [`listings_of_project`].
pub fn listing_of_project(
    project_id: &str,
    created_at: DateTime<Utc>,
    listing_id: &str,
) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        listings_of_project(project_id),
        format!("{}#{listing_id}", sortable_time(created_at)),
    )
}

/// How many GSI2 partitions the catalogue feed spreads over, so that a burst of listing changes
/// (every sale moves a listing's available count) never meets one index partition's write limit.
pub const CATALOGUE_SHARDS: u32 = 4;

/// GSI2 partition `shard` of the catalogue feed: approved projects and listings, each once, by
/// when it last changed. The catalogue's search index loads it whole, then reads what changed.
pub fn catalogue_feed(shard: u32) -> String {
    format!("CATALOGUE#{shard}")
}

/// The feed entry of a catalogue record (`kind` `PROJECT` or `LISTING`) changed at `at`. The shard
/// is a hash of the id, so one record always sits in one shard. Stored keys depend on this hash:
/// changing it would leave every record's older entry in another shard.
pub fn catalogue_entry(kind: &str, id: &str, at: DateTime<Utc>) -> IndexKey {
    let shard = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % CATALOGUE_SHARDS;
    IndexKey::new(
        Index::Gsi2,
        catalogue_feed(shard),
        catalogue_position(at, &format!("{kind}#{id}")),
    )
}

/// A position in the catalogue feed: entries changed at `at` sort after every earlier change.
pub fn catalogue_position(at: DateTime<Utc>, tail: &str) -> String {
    format!("{}#{tail}", sortable_time(at))
}

pub fn order(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "ORDER")
}

/// GSI1 partition listing a buyer's orders (`USER#<id>` or `ORG#<id>`), oldest first.
pub fn orders_of(buyer: &str) -> String {
    format!("OWNER#{buyer}#ORDERS")
}

/// An order's entry among its buyer's orders.
pub fn order_of_buyer(buyer: &str, created_at: DateTime<Utc>, order_id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        orders_of(buyer),
        format!("{}#{order_id}", sortable_time(created_at)),
    )
}

/// GSI2 partition of orders not yet final (awaiting payment), by last move: what the expiry
/// sweeper reads.
pub const OPEN_ORDERS: &str = "ORDERS#open";

pub fn holding(holding_id: &str) -> Key {
    Key::new(format!("HOLDING#{holding_id}"), "HOLDING")
}

/// GSI1 partition listing an owner's holdings, oldest first.
pub fn holdings_of(owner: &str) -> String {
    format!("OWNER#{owner}#HOLDINGS")
}

pub fn holding_of_owner(owner: &str, acquired_at: DateTime<Utc>, holding_id: &str) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        holdings_of(owner),
        format!("{}#{holding_id}", sortable_time(acquired_at)),
    )
}

pub fn retirement(retirement_id: &str) -> Key {
    Key::new(format!("RETIREMENT#{retirement_id}"), "RETIREMENT")
}

/// GSI1 partition listing an owner's retirements, oldest first.
pub fn retirements_of(owner: &str) -> String {
    format!("OWNER#{owner}#RETIREMENTS")
}

pub fn retirement_of_owner(
    owner: &str,
    requested_at: DateTime<Utc>,
    retirement_id: &str,
) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        retirements_of(owner),
        format!("{}#{retirement_id}", sortable_time(requested_at)),
    )
}

/// GSI2 partition of retirements not yet completed, by last move: what the retirement sweeper
/// reads to send a lost message again.
pub const OPEN_RETIREMENTS: &str = "RETIREMENTS#open";

/// A buyer's count of orders awaiting payment (`owner` is `USER#<id>` or `ORG#<id>`).
pub fn unpaid_orders(owner: &str) -> Key {
    Key::new(format!("OWNER#{owner}#UNPAID"), "UNPAID")
}

/// A message in the transactional outbox (`amanar_core::outbox`), until it is sent.
pub fn outbox(outbox_id: &str) -> Key {
    Key::new(format!("OUTBOX#{outbox_id}"), "OUTBOX")
}

/// GSI2 partition of the outbox's messages, by when they were written: what its sweeper reads
/// to send those a sender left behind.
pub const OPEN_OUTBOX: &str = "OUTBOX#open";

pub fn notification(notification_id: &str) -> Key {
    Key::new(format!("NOTIFICATION#{notification_id}"), "NOTIFICATION")
}

/// GSI1 partition listing a user's in-app notifications, oldest first.
pub fn notifications_of(user_id: &str) -> String {
    format!("USER#{user_id}#NOTIFICATIONS")
}

pub fn notification_of_user(
    user_id: &str,
    created_at: DateTime<Utc>,
    notification_id: &str,
) -> IndexKey {
    IndexKey::new(
        Index::Gsi1,
        notifications_of(user_id),
        format!("{}#{notification_id}", sortable_time(created_at)),
    )
}

/// The partition of a project and what hangs off it (history, documents, buyer ratings).
fn project_pk(project_id: &str) -> String {
    format!("PROJECT#{project_id}")
}

/// A rating of a project, by its id (a digest of project and author: public lists and their
/// cursors never carry the author's user id).
pub fn buyer_rating(project_id: &str, rating_id: &str) -> Key {
    Key::new(project_pk(project_id), format!("{BUYER_RATING}{rating_id}"))
}

/// The partition of a project's buyer ratings (query with [`BUYER_RATING`]).
pub fn buyer_ratings_of(project_id: &str) -> String {
    project_pk(project_id)
}

/// Sort-key prefix of a project's buyer ratings.
pub const BUYER_RATING: &str = "RATING#";

/// A project's buyer-rating totals (count and stars), in the catalogue feed.
pub fn buyer_rating_totals(project_id: &str) -> Key {
    Key::new(project_pk(project_id), BUYER_RATING_TOTALS)
}

/// The sort key of [`buyer_rating_totals`].
pub const BUYER_RATING_TOTALS: &str = "RATINGS";

/// Marks a user as a verified buyer of a project (a completed order they placed).
pub fn verified_buyer(project_id: &str, user_id: &str) -> Key {
    Key::new(project_pk(project_id), format!("BUYER#{user_id}"))
}

pub fn payment_customer(provider: &str, owner: &str) -> Key {
    Key::new(format!("PAYCUSTOMER#{provider}#{owner}"), "CUSTOMER")
}

pub fn payment_event(provider: &str, event_id: &str) -> Key {
    Key::new(format!("PAYEVENT#{provider}#{event_id}"), "EVENT")
}

pub fn local_payment(payment_id: &str) -> Key {
    Key::new(format!("LOCALPAY#{payment_id}"), "PAYMENT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Item, Update};
    use chrono::TimeZone;
    use serde_json::json;

    fn entry(key: IndexKey) -> (Index, String, String) {
        (key.index, key.pk, key.sk)
    }

    fn owned(index: Index, pk: &str, sk: &str) -> (Index, String, String) {
        (index, pk.to_owned(), sk.to_owned())
    }

    /// Stored items must not change shape: these are the texts already in tables.
    #[test]
    fn index_entries_keep_the_keys_already_stored() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 5).unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(
            entry(upload_of_owner("ORG#org_1", "upl_1")),
            owned(Index::Gsi1, "OWNER#ORG#org_1", "UPLOAD#upl_1")
        );
        assert_eq!(
            entry(unfinished(PENDING_UPLOADS, at, "upl_1")),
            owned(
                Index::Gsi2,
                "UPLOADS#pending",
                "2026-03-01T12:30:05.000000Z#upl_1"
            )
        );
        assert_eq!(
            entry(idp_user_credentials("usr_1")),
            owned(Index::Gsi1, "IDP#USER#usr_1", "CREDENTIALS")
        );
        assert_eq!(
            entry(membership_of_user("usr_1", "org_1")),
            owned(Index::Gsi1, "USER#usr_1#ORGS", "org_1")
        );
        assert_eq!(
            entry(child_of("org_1", "org_2")),
            owned(Index::Gsi1, "ORG#org_1#CHILDREN", "org_2")
        );
        assert_eq!(
            entry(invitation_to("ada@example.com", "org_1")),
            owned(Index::Gsi1, "INVITES#ada@example.com", "org_1")
        );
        assert_eq!(
            entry(api_key_id("key_1")),
            owned(Index::Gsi1, "APIKEY#key_1", "KEY")
        );
        assert_eq!(
            entry(footprint_in_history("USER#usr_1", day, "fp_1")),
            owned(Index::Gsi1, "FOOTPRINTS#USER#usr_1", "2025-01-01#fp_1")
        );
        assert_eq!(
            entry(import_of_org("org_1", "imp_1")),
            owned(Index::Gsi1, "ORG#org_1#IMPORTS", "imp_1")
        );
        assert_eq!(
            entry(unfinished(OPEN_IMPORTS, at, "imp_1")),
            owned(
                Index::Gsi2,
                "IMPORTS#open",
                "2026-03-01T12:30:05.000000Z#imp_1"
            )
        );
        assert_eq!(
            (footprints_from(day), footprints_through(day)),
            ("2025-01-01".to_owned(), "2025-01-01#~".to_owned())
        );
        assert_eq!(
            mailbox_message("ada@example.com", at, "mail_1"),
            Key::new("MAILBOX#ada@example.com", "20260301T123005.000000Z#mail_1")
        );
        assert_eq!(org_member("org_1", "usr_1").sk, format!("{MEMBERS}usr_1"));
        assert_eq!(api_key_listing("org_1", "key_1").sk, "APIKEY#key_1");
        assert_eq!(
            audit_entry(&audit_stream_org("org_1"), 7).pk,
            "AUDIT#ORG#org_1"
        );
        assert_eq!(audit_entry("USER#usr_1", 7).sk, "E#000000000007");
        assert_eq!(audit_stream_user("usr_1"), "USER#usr_1");
    }

    #[test]
    fn ledger_keys_sort_serials_as_numbers() {
        assert_eq!(
            credit_block("iss_1", 42),
            Key::new("ISSUANCE#iss_1", "BLOCK#00000000000000000042")
        );
        assert_eq!(
            entry(block_of_account("listing:lst_1", "iss_1", 42)),
            owned(
                Index::Gsi1,
                "ACCOUNT#listing:lst_1",
                "iss_1#00000000000000000042"
            )
        );
        assert_eq!(
            serial_claim("VCS", 941467007),
            Key::new("SERIALS#VCS", "RANGE#00000000000941467007")
        );
        assert_eq!(
            serial_namespace_head("VCS"),
            Key::new("SERIALS#VCS", "HEAD")
        );
        assert_eq!(
            ledger_movement("reserve:ord_1:0"),
            Key::new("MOVE#reserve:ord_1:0", "MOVE")
        );
        assert!(serial_number(9) < serial_number(10));
        assert!(serial_number(u64::MAX).len() == 20);
    }

    #[test]
    fn an_item_is_listed_in_an_index_by_its_key_attributes_and_unlisted_by_removing_them() {
        let mut item = Item::new();
        unfinished(OPEN_IMPORTS, Utc.timestamp_opt(0, 0).unwrap(), "imp_1").insert_into(&mut item);
        assert_eq!(
            serde_json::Value::Object(item.clone()),
            json!({"gsi2pk": "IMPORTS#open", "gsi2sk": "1970-01-01T00:00:00.000000Z#imp_1"})
        );
        let key = Key::new("IMPORT#imp_1", "IMPORT");
        let unlisted = Update::new()
            .remove_index(Index::Gsi2)
            .apply(&key, Some(item))
            .unwrap();
        assert_eq!(Index::Gsi2.key_of(&unlisted), None);
        let relisted = Update::new()
            .set_index(import_of_org("org_1", "imp_1"))
            .apply(&key, Some(unlisted))
            .unwrap();
        assert_eq!(
            Index::Gsi1.key_of(&relisted),
            Some(("ORG#org_1#IMPORTS".into(), "imp_1".into()))
        );
    }
}
