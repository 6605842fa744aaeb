//! Carbon projects: their fields and checks, their documents, and the verification workflow.
//!
//! `draft -> submitted -> under_review -> changes_requested | approved | rejected`, and
//! `changes_requested -> submitted` again. Every move is one write conditioned on the version the
//! mover read, so of two concurrent decisions exactly one lands and the other learns the state it
//! lost to. Each move writes its history entry in the same write. Submitting also checks, in that
//! write, that an accepted project-design document exists.
//!
//! Edits are allowed in `draft` and `changes_requested` only, with optimistic concurrency: the
//! caller names the version it edited.

use std::sync::Arc;

use amanar_core::keys;
use amanar_core::table::{
    Condition, Cursor, Index, IndexKey, Query, SortKey, Table, TableError, Update, VERSION,
    WriteOp, items,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::serial::Standard;
use crate::taxonomy;

/// Removal (carbon taken out of the atmosphere) or avoidance (emissions prevented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    Removal,
    Avoidance,
}

/// When credits are issued: after the tonnes are verified, or ahead of them (forward credits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuanceType {
    ExPost,
    ExAnte,
}

/// The labels a project may carry beside its standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Climate, Community & Biodiversity Standards (Verra).
    Ccb,
    /// ICVCM Core Carbon Principles approved.
    Ccp,
    CorsiaEligible,
    Article6Authorised,
    CorrespondingAdjustment,
}

/// Where the project is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// A place name ("Bale Mountains, Oromia").
    pub name: Option<String>,
}

/// The fields a developer writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectFields {
    pub name: String,
    pub description: String,
    pub category: String,
    pub project_type: String,
    /// OffsetsDB protocol id (`vm0015`, `acm0002`).
    pub protocol: Option<String>,
    pub standard: Standard,
    pub mechanism: Mechanism,
    pub issuance_type: IssuanceType,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub location: Option<Location>,
    /// UN Sustainable Development Goals, 1 to 17.
    pub sdgs: Vec<u8>,
    pub labels: Vec<Label>,
    /// How long the stored carbon is expected to stay out of the atmosphere, in years.
    pub permanence_years: Option<u32>,
    /// The project's id at its registry (`VCS1340`); none for `NATIVE`.
    pub registry_project_id: Option<String>,
    pub registry_url: Option<String>,
}

/// Where a project is in verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    UnderReview,
    ChangesRequested,
    Approved,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::UnderReview => "under_review",
            Status::ChangesRequested => "changes_requested",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
        }
    }

    pub fn editable(self) -> bool {
        matches!(self, Status::Draft | Status::ChangesRequested)
    }
}

/// A verifier's decision on a project under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    RequestChanges,
}

impl Decision {
    fn status(self) -> Status {
        match self {
            Decision::Approve => Status::Approved,
            Decision::Reject => Status::Rejected,
            Decision::RequestChanges => Status::ChangesRequested,
        }
    }
}

/// A stored project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    /// `USER#<id>` or `ORG#<id>`.
    pub owner: String,
    #[serde(flatten)]
    pub fields: ProjectFields,
    pub status: Status,
    /// The verifier who took the project for review, while it is under review or decided.
    pub reviewer: Option<String>,
    pub version: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who last changed the fields.
    #[serde(default)]
    pub updated_by: Option<String>,
    /// Ratings from rating agencies, recorded by admins once the project is approved.
    #[serde(default)]
    pub agency_ratings: Vec<crate::ratings::AgencyRating>,
    /// The head of the project's hash-chained history: how many moves, and the last one's hash.
    #[serde(default)]
    pub history_seq: u64,
    #[serde(default)]
    pub history_hash: String,
    /// When it was approved (by its verifier, or imported approved): `None` before approval and on
    /// projects stored before the field existed. Read through [`Project::approval_time`].
    #[serde(default)]
    pub approved_at: Option<DateTime<Utc>>,
}

impl Project {
    /// A project approved elsewhere (at its registry, or for a test or benchmark), as
    /// [`Projects::import_approved`] stores it: version 1, no reviewer, no history yet.
    pub fn approved_elsewhere(
        id: String,
        owner: String,
        fields: ProjectFields,
        actor: String,
        now: DateTime<Utc>,
    ) -> Self {
        Project {
            id,
            owner,
            fields,
            status: Status::Approved,
            reviewer: None,
            version: 1,
            created_by: actor,
            created_at: now,
            updated_at: now,
            updated_by: None,
            agency_ratings: Vec::new(),
            history_seq: 0,
            history_hash: String::new(),
            approved_at: Some(now),
        }
    }

    /// When the project was approved, the time the catalogue shows and sorts by
    /// (`sort=approved`); `None` if it is not approved. For a project stored before `approvedAt`
    /// existed, its `updatedAt`: nothing writes that after approval (edits need an editable
    /// state; ratings and listing slots leave it).
    pub fn approval_time(&self) -> Option<DateTime<Utc>> {
        match self.status {
            Status::Approved => Some(self.approved_at.unwrap_or(self.updated_at)),
            _ => None,
        }
    }
}

/// One move of a project, as `GET /v1/projects/{id}/history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub from: Option<Status>,
    pub to: Status,
    pub notes: Option<String>,
    /// 1, 2, 3... within the project.
    #[serde(default)]
    pub seq: u64,
    /// The previous move's hash (`""` for the first).
    #[serde(default)]
    pub prev_hash: String,
    /// Hex SHA-256 over the previous hash and this move's fields ([`chain_is_intact`]).
    #[serde(default)]
    pub hash: String,
}

/// The hash of one move: SHA-256 over the previous hash, the sequence number, the project id and
/// the move's fields, each followed by a NUL byte.
fn move_hash(project_id: &str, entry: &HistoryEntry) -> String {
    use sha2::{Digest, Sha256};
    let status = |s: Option<Status>| s.map(Status::as_str).unwrap_or("");
    let mut hash = Sha256::new();
    for part in [
        entry.prev_hash.as_str(),
        &entry.seq.to_string(),
        project_id,
        &keys::sortable_time(entry.at),
        &entry.actor,
        status(entry.from),
        entry.to.as_str(),
        entry.notes.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// Whether a project's history (as [`Projects::history`] returns it) is the unbroken chain its
/// head names: numbered from 1, each entry naming the hash before it and hashing to its own, the
/// last one's hash the project's `historyHash`. An entry changed, removed or inserted breaks it.
pub fn chain_is_intact(project: &Project, entries: &[HistoryEntry]) -> bool {
    let mut prev = String::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.seq != i as u64 + 1
            || entry.prev_hash != prev
            || entry.hash != move_hash(&project.id, entry)
        {
            return false;
        }
        prev = entry.hash.clone();
    }
    project.history_seq == entries.len() as u64 && project.history_hash == prev
}

/// The kinds of document a project holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    ProjectDesign,
    ValidationReport,
    MonitoringReport,
    VerificationReport,
    Other,
}

/// Where a document's file is: waiting for its upload and check, or settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    Pending,
    Accepted,
    Rejected,
}

/// A field that failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

/// ISO 3166-1 alpha-2 codes (tzdata's `iso3166.tab`, public domain), compiled in.
const COUNTRIES: &str = include_str!("../data/countries.txt");

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.lines().any(|line| line == code)
}

/// Text without control characters (but line breaks and tabs where `lines`) and without the
/// invisible format characters that reorder or hide text (bidirectional overrides, zero-width
/// marks), so what a verifier reads is what was written.
pub fn plain(text: &str, lines: bool) -> bool {
    text.chars().all(|c| {
        let allowed_control = lines && (c == '\n' || c == '\t' || c == '\r');
        (!c.is_control() || allowed_control)
            && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    })
}

/// Whether `url` is an `https` URL of at most `max_len` characters that names a host and nothing a
/// reader could mistake for one. The whole URL is printable ASCII without spaces (RFC 3986: other
/// characters arrive percent-encoded), so no invisible or bidirectional character hides in it; the
/// host is dot-separated labels of letters, digits and inner hyphens, with no user info
/// (`https://registry.verra.org@evil.example/`) and a port from 1 to 65535 if any. Used for every
/// link the catalogue shows.
pub fn is_https_url(url: &str, max_len: usize) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    if url.len() > max_len || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|port| {
        port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|number| number > 0)
    });
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    port_ok
        && host.len() <= 253
        && host.contains('.')
        && host.split('.').all(label_ok)
        // An all-numeric last label is an IP address in some form (`2130706433`, `127.1`).
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks every field, returning all problems at once.
pub fn check(fields: &ProjectFields) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let name = fields.name.trim();
    if name.is_empty() || name.chars().count() > 200 || !plain(name, false) {
        problems.push(problem(
            "name",
            "must be 1 to 200 printable characters on one line",
        ));
    }
    if fields.description.chars().count() > 10_000 || !plain(&fields.description, true) {
        problems.push(problem(
            "description",
            "must be at most 10,000 printable characters",
        ));
    }
    match taxonomy::project_type(&fields.project_type) {
        None => problems.push(problem(
            "projectType",
            "must be an OffsetsDB project type (docs/marketplace.md links the list)",
        )),
        Some(t) if t.category != fields.category => problems.push(problem(
            "category",
            format!(
                "project type {:?} belongs to category {:?}",
                t.key, t.category
            ),
        )),
        Some(_) => {}
    }
    if !taxonomy::categories().contains(&fields.category.as_str())
        && !problems.iter().any(|p| p.field == "category")
    {
        problems.push(problem("category", "must be an OffsetsDB category"));
    }
    if let Some(protocol) = &fields.protocol
        && taxonomy::protocol(protocol).is_none()
    {
        problems.push(problem(
            "protocol",
            "must be an OffsetsDB protocol id (acm0002, vm0015)",
        ));
    }
    if !is_country(&fields.country) {
        problems.push(problem(
            "country",
            "must be an ISO 3166-1 alpha-2 code (ET, BR)",
        ));
    }
    if let Some(location) = &fields.location {
        if !(-90.0..=90.0).contains(&location.latitude) {
            problems.push(problem("location.latitude", "must be from -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&location.longitude) {
            problems.push(problem("location.longitude", "must be from -180 to 180"));
        }
        if location
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200 || !plain(n, false))
        {
            problems.push(problem("location.name", "must be at most 200 characters"));
        }
    }
    let mut sdgs = fields.sdgs.clone();
    sdgs.sort_unstable();
    sdgs.dedup();
    if sdgs.len() != fields.sdgs.len() || fields.sdgs.iter().any(|g| !(1..=17).contains(g)) {
        problems.push(problem("sdgs", "must be distinct goals from 1 to 17"));
    }
    let mut labels = fields.labels.clone();
    labels.sort_unstable();
    labels.dedup();
    if labels.len() != fields.labels.len() {
        problems.push(problem("labels", "must be distinct"));
    }
    if fields
        .permanence_years
        .is_some_and(|y| y == 0 || y > 100_000)
    {
        problems.push(problem("permanenceYears", "must be from 1 to 100,000"));
    }
    match (fields.standard, &fields.registry_project_id) {
        (Standard::Native, Some(_)) => problems.push(problem(
            "registryProjectId",
            "a NATIVE project has no registry id: its credits are issued here",
        )),
        (_, Some(id)) if id.trim().is_empty() || id.len() > 64 => {
            problems.push(problem("registryProjectId", "must be 1 to 64 characters"))
        }
        _ => {}
    }
    if let Some(url) = &fields.registry_url
        && !is_https_url(url, 500)
    {
        problems.push(problem(
            "registryUrl",
            "must be an https URL of at most 500 ASCII characters naming a host, without user info",
        ));
    }
    problems
}

/// Why a project store operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectError {
    #[error("no such project")]
    NotFound,
    /// The project is not in a state that allows the move; `current` says where it is.
    #[error("the project is {current}")]
    State { current: &'static str },
    /// The caller edited another version than the stored one.
    #[error("the project is at version {current}")]
    Version { current: u64 },
    #[error("submitting needs an accepted project-design document")]
    NoDesignDocument,
    /// Another verifier took the project for review.
    #[error("another verifier is reviewing the project")]
    NotYourReview,
    #[error("the project holds the most documents it may")]
    TooManyDocuments,
    #[error("the project holds the most agency ratings it may")]
    TooManyRatings,
    /// A rating with this id (from this caller's Idempotency-Key) was recorded with other values.
    #[error("the rating id was used for a different rating")]
    RatingReused,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Projects over the Table port.
#[derive(Clone)]
pub struct Projects {
    table: Arc<dyn Table>,
}

/// Where a submitted or in-review project waits for verifiers.
fn queue_entry(status: Status, at: DateTime<Utc>, id: &str) -> Option<IndexKey> {
    matches!(status, Status::Submitted | Status::UnderReview)
        .then(|| keys::verification_queue_entry(status.as_str(), at, id))
}

impl Projects {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Creates a draft. The fields must already pass [`check`].
    pub async fn create(
        &self,
        id: &str,
        owner: &str,
        fields: ProjectFields,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Project, ProjectError> {
        let project = Project {
            id: id.to_owned(),
            owner: owner.to_owned(),
            fields,
            status: Status::Draft,
            reviewer: None,
            version: 1,
            created_by: actor.to_owned(),
            created_at: now,
            updated_at: now,
            updated_by: None,
            agency_ratings: Vec::new(),
            history_seq: 0,
            history_hash: String::new(),
            approved_at: None,
        };
        let mut project = project;
        let history = self.history_op(&mut project, now, actor, None, Status::Draft, None)?;
        let mut item = items::with_key(&keys::project(id), &project)?;
        keys::project_of_owner(owner, now, id).insert_into(&mut item);
        item.insert(DOCUMENT_SLOTS.into(), json!(MAX_DOCUMENTS));
        self.table
            .write(vec![WriteOp::put(item).when(Condition::NotExists), history])
            .await?;
        Ok(project)
    }

    /// Puts an approved project straight into the catalogue, with one history entry saying why
    /// (`notes`): the demo catalogue's projects, verified at their registries, not here. Refused
    /// if the id exists.
    pub async fn import_approved(
        &self,
        project: &Project,
        notes: &str,
    ) -> Result<(), ProjectError> {
        let mut project = project.clone();
        project.status = Status::Approved;
        project.history_seq = 0;
        project.history_hash = String::new();
        let now = project.updated_at;
        project.approved_at.get_or_insert(now);
        let actor = project.created_by.clone();
        let history = self.history_op(
            &mut project,
            now,
            &actor,
            None,
            Status::Approved,
            Some(notes.to_owned()),
        )?;
        let mut item = items::with_key(&keys::project(&project.id), &project)?;
        keys::project_of_owner(&project.owner, project.created_at, &project.id)
            .insert_into(&mut item);
        keys::catalogue_entry("PROJECT", &project.id, now).insert_into(&mut item);
        item.insert(DOCUMENT_SLOTS.into(), json!(0));
        item.insert(
            crate::listings::LISTING_SLOTS.into(),
            json!(crate::listings::MAX_OPEN_LISTINGS),
        );
        self.table
            .write(vec![WriteOp::put(item).when(Condition::NotExists), history])
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Project>, ProjectError> {
        Ok(items::load(self.table.as_ref(), &keys::project(id)).await?)
    }

    async fn load(&self, id: &str) -> Result<Project, ProjectError> {
        self.get(id).await?.ok_or(ProjectError::NotFound)
    }

    /// Replaces the fields of a draft (or a project whose changes were requested), if the stored
    /// version is `version`.
    pub async fn edit(
        &self,
        id: &str,
        version: u64,
        fields: ProjectFields,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Project, ProjectError> {
        let project = self.load(id).await?;
        if project.version != version {
            return Err(ProjectError::Version {
                current: project.version,
            });
        }
        if !project.status.editable() {
            return Err(ProjectError::State {
                current: project.status.as_str(),
            });
        }
        // The fields change in place (the item keeps its counters and index entries); the
        // version condition also pins the status read above.
        let serde_json::Value::Object(changed) =
            serde_json::to_value(&fields).map_err(|e| TableError::Invalid(e.to_string()))?
        else {
            return Err(TableError::Invalid("project fields are an object".into()).into());
        };
        let mut update = Update::new()
            .set(VERSION, version + 1)
            .set("updatedAt", json!(now))
            .set("updatedBy", actor);
        for (name, value) in changed {
            update = update.set(name, value);
        }
        let write = WriteOp::update(keys::project(id), update).when(Condition::VersionIs(version));
        match self.table.write(vec![write]).await {
            Ok(()) => Ok(Project {
                fields,
                version: version + 1,
                updated_at: now,
                updated_by: Some(actor.to_owned()),
                ..project
            }),
            Err(TableError::ConditionFailed { .. }) => Err(self.lost(id, Some(version)).await),
            Err(e) => Err(e.into()),
        }
    }

    /// `draft | changes_requested -> submitted`, once an accepted project-design document exists.
    pub async fn submit(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Project, ProjectError> {
        let project = self.load(id).await?;
        if !project.status.editable() {
            return Err(ProjectError::State {
                current: project.status.as_str(),
            });
        }
        let design = self
            .documents(id)
            .await?
            .into_iter()
            .find(|d| d.kind == DocumentKind::ProjectDesign && d.state == DocumentState::Accepted)
            .ok_or(ProjectError::NoDesignDocument)?;
        let check = WriteOp::check(
            keys::project_document(id, &design.id),
            Condition::Equals("state".into(), json!("accepted")),
        );
        self.transition(
            project,
            Status::Submitted,
            actor,
            None,
            None,
            now,
            vec![check],
        )
        .await
    }

    /// `submitted -> under_review`: the verifier takes the project.
    pub async fn take(
        &self,
        id: &str,
        verifier: &str,
        now: DateTime<Utc>,
    ) -> Result<Project, ProjectError> {
        let project = self.load(id).await?;
        if project.status != Status::Submitted {
            return Err(ProjectError::State {
                current: project.status.as_str(),
            });
        }
        self.transition(
            project,
            Status::UnderReview,
            verifier,
            Some(verifier),
            None,
            now,
            vec![],
        )
        .await
    }

    /// `under_review -> approved | rejected | changes_requested`, with notes.
    pub async fn decide(
        &self,
        id: &str,
        verifier: &str,
        decision: Decision,
        notes: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Project, ProjectError> {
        let project = self.load(id).await?;
        if project.status != Status::UnderReview {
            return Err(ProjectError::State {
                current: project.status.as_str(),
            });
        }
        // Taking a project reserves its decision; the version condition pins the reviewer read.
        if project.reviewer.as_deref() != Some(verifier) {
            return Err(ProjectError::NotYourReview);
        }
        let reviewer = project.reviewer.clone();
        self.transition(
            project,
            decision.status(),
            verifier,
            reviewer.as_deref(),
            notes,
            now,
            vec![],
        )
        .await
    }

    /// One move: the project as read, to `to`, conditioned on the version read, with its history
    /// entry, the caller's checks and the owner's notice (into the outbox) in the same write.
    #[allow(clippy::too_many_arguments)]
    async fn transition(
        &self,
        project: Project,
        to: Status,
        actor: &str,
        reviewer: Option<&str>,
        notes: Option<String>,
        now: DateTime<Utc>,
        checks: Vec<WriteOp>,
    ) -> Result<Project, ProjectError> {
        let mut project = project;
        let from = project.status;
        // The move's entry extends the chain whose head the project holds; the version condition
        // below makes two moves from one head impossible.
        let history = self.history_op(&mut project, now, actor, Some(from), to, notes.clone())?;
        let mut update = Update::new()
            .set("status", to.as_str())
            .set("updatedAt", json!(now))
            .set(VERSION, project.version + 1)
            .set("historySeq", project.history_seq)
            .set("historyHash", project.history_hash.clone());
        update = match reviewer {
            Some(reviewer) => update.set("reviewer", reviewer),
            None => update.set("reviewer", serde_json::Value::Null),
        };
        // GSI2: the verification queue while submitted or in review, the catalogue feed once
        // approved, nothing otherwise.
        update = match queue_entry(to, now, &project.id) {
            Some(entry) => update.set_index(entry),
            None if to == Status::Approved => update
                .set("approvedAt", json!(now))
                .set(
                    crate::listings::LISTING_SLOTS,
                    crate::listings::MAX_OPEN_LISTINGS,
                )
                .set_index(keys::catalogue_entry("PROJECT", &project.id, now)),
            None => update.remove_index(Index::Gsi2),
        };
        let mut ops = vec![
            WriteOp::update(keys::project(&project.id), update)
                .when(Condition::VersionIs(project.version)),
            history,
        ];
        ops.extend(checks);
        let moved = Project {
            status: to,
            reviewer: reviewer.map(str::to_owned),
            version: project.version + 1,
            updated_at: now,
            approved_at: if to == Status::Approved {
                Some(now)
            } else {
                project.approved_at
            },
            ..project.clone()
        };
        if let Some(notice) = status_notice(&moved, notes.as_deref(), now) {
            ops.push(notice.staged(now)?);
        }
        match self.table.write(ops).await {
            Ok(()) => Ok(moved),
            Err(TableError::ConditionFailed { index: 2.., .. }) => {
                Err(ProjectError::NoDesignDocument)
            }
            Err(TableError::ConditionFailed { .. }) => Err(self.lost(&project.id, None).await),
            Err(e) => Err(e.into()),
        }
    }

    /// What a move that lost its condition reports: another version than the one edited, or the
    /// state it lost to.
    async fn lost(&self, id: &str, edited: Option<u64>) -> ProjectError {
        match self.get(id).await {
            Ok(Some(now)) if edited.is_some_and(|v| v != now.version) => ProjectError::Version {
                current: now.version,
            },
            Ok(Some(now)) => ProjectError::State {
                current: now.status.as_str(),
            },
            Ok(None) => ProjectError::NotFound,
            Err(e) => e,
        }
    }

    /// The put of the project's next history entry, chained to the head the project holds;
    /// moves the project's head to it.
    fn history_op(
        &self,
        project: &mut Project,
        at: DateTime<Utc>,
        actor: &str,
        from: Option<Status>,
        to: Status,
        notes: Option<String>,
    ) -> Result<WriteOp, TableError> {
        let mut entry = HistoryEntry {
            at,
            actor: actor.to_owned(),
            from,
            to,
            notes,
            seq: project.history_seq + 1,
            prev_hash: project.history_hash.clone(),
            hash: String::new(),
        };
        entry.hash = move_hash(&project.id, &entry);
        project.history_seq = entry.seq;
        project.history_hash = entry.hash.clone();
        let key = keys::project_history(&project.id, at, &amanar_core::new_id("his"));
        Ok(WriteOp::put(items::with_key(&key, &entry)?).when(Condition::NotExists))
    }

    /// A project's moves, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, ProjectError> {
        let query = Query::partition(Index::Primary, keys::project(id).pk)
            .sort(SortKey::BeginsWith(keys::PROJECT_HISTORY_PREFIX.into()));
        let mut entries: Vec<HistoryEntry> = self.every(query).await?;
        // Two moves in one microsecond sort by their random ids; the chain's order is the truth.
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// The verification queue: projects in `status` (submitted or under review), oldest first.
    pub async fn queue(
        &self,
        status: Status,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Project>, Option<Cursor>), ProjectError> {
        let query = Query::partition(Index::Gsi2, keys::verification_queue(status.as_str()))
            .limit(limit)
            .after(cursor);
        Ok(items::parse_page(self.table.query(&query).await?)?)
    }

    /// Records an agency rating on an approved project, conditioned on the version read; the
    /// project's catalogue entry moves with it. Answers with the rating stored under
    /// `rating.id`: this one, or the one an earlier attempt with that id recorded.
    pub async fn rate(
        &self,
        id: &str,
        rating: crate::ratings::AgencyRating,
        now: DateTime<Utc>,
    ) -> Result<crate::ratings::AgencyRating, ProjectError> {
        for _ in 0..8 {
            let mut project = self.load(id).await?;
            // A retry of a recorded rating (same id) answers with it rather than adding it twice;
            // checked on every attempt, so two concurrent retries add it once between them.
            if let Some(made) = project.agency_ratings.iter().find(|r| r.id == rating.id) {
                return if made.same_grading(&rating) {
                    Ok(made.clone())
                } else {
                    Err(ProjectError::RatingReused)
                };
            }
            if project.status != Status::Approved {
                return Err(ProjectError::State {
                    current: project.status.as_str(),
                });
            }
            if project.agency_ratings.len() >= crate::ratings::MAX_RATINGS {
                return Err(ProjectError::TooManyRatings);
            }
            project.agency_ratings.push(rating.clone());
            let update = Update::new()
                .set("agencyRatings", json!(project.agency_ratings))
                .set(VERSION, project.version + 1)
                .set_index(keys::catalogue_entry("PROJECT", id, now));
            let write = WriteOp::update(keys::project(id), update)
                .when(Condition::VersionIs(project.version));
            match self.table.write(vec![write]).await {
                Ok(()) => return Ok(rating),
                Err(TableError::ConditionFailed { .. } | TableError::TransactionConflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(TableError::TransactionConflict.into())
    }

    /// An owner's projects, oldest first.
    pub async fn of_owner(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Project>, Option<Cursor>), ProjectError> {
        let query = Query::partition(Index::Gsi1, keys::projects_of_owner(owner))
            .limit(limit)
            .after(cursor);
        Ok(items::parse_page(self.table.query(&query).await?)?)
    }

    /// Declares a document; its file is checked through the platform's uploads, which settle it.
    /// `with` are the caller's operations in the same write (the upload's record).
    /// Documents are added while the project is editable (a draft, or changes requested), up
    /// to [`MAX_DOCUMENTS`]: the write takes one of the project's document slots, under the
    /// condition that it is still in the state read.
    pub async fn declare_document(
        &self,
        project_id: &str,
        document: &Document,
        with: Vec<WriteOp>,
    ) -> Result<(), ProjectError> {
        let project = self.load(project_id).await?;
        if !project.status.editable() {
            return Err(ProjectError::State {
                current: project.status.as_str(),
            });
        }
        let item = items::with_key(&keys::project_document(project_id, &document.id), document)?;
        let slot = WriteOp::update(
            keys::project(project_id),
            Update::new().add(DOCUMENT_SLOTS, -1),
        )
        .when(Condition::AtLeast(DOCUMENT_SLOTS.into(), 1))
        .when(Condition::Equals(
            "status".into(),
            json!(project.status.as_str()),
        ));
        let mut ops = vec![WriteOp::put(item).when(Condition::NotExists), slot];
        ops.extend(with);
        match self.table.write(ops).await {
            Err(TableError::ConditionFailed { index: 1, .. }) => match self.load(project_id).await?
            {
                now if now.status != project.status => Err(ProjectError::State {
                    current: now.status.as_str(),
                }),
                _ => Err(ProjectError::TooManyDocuments),
            },
            other => Ok(other?),
        }
    }

    /// Settles a pending document once its file was checked; `false` if it was settled before.
    pub async fn settle_document(
        &self,
        project_id: &str,
        document_id: &str,
        upload_id: &str,
        state: DocumentState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, ProjectError> {
        let mut update = Update::new()
            .set("state", json!(state))
            .set("settledAt", json!(now));
        if let Some(reason) = reason {
            update = update.set("reason", reason);
        }
        // Only the upload the document was declared with settles it.
        let op = WriteOp::update(keys::project_document(project_id, document_id), update)
            .when(Condition::Equals("state".into(), json!("pending")))
            .when(Condition::Equals("uploadId".into(), json!(upload_id)));
        match self.table.write(vec![op]).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A project's documents, oldest first.
    pub async fn documents(&self, project_id: &str) -> Result<Vec<Document>, ProjectError> {
        let query = Query::partition(Index::Primary, keys::project(project_id).pk)
            .sort(SortKey::BeginsWith(keys::PROJECT_DOCUMENT_PREFIX.into()));
        self.every(query).await
    }

    /// One document of a project.
    pub async fn document(
        &self,
        project_id: &str,
        document_id: &str,
    ) -> Result<Option<Document>, ProjectError> {
        let key = keys::project_document(project_id, document_id);
        Ok(items::load(self.table.as_ref(), &key).await?)
    }

    /// Everyone on the developer's side of the project: its creator, its last editor and whoever
    /// drafted or submitted it (the history's moves to `draft` and `submitted`). A verifier among
    /// them never reviews it. Reviewers' own moves do not count.
    pub async fn involved(&self, project: &Project) -> Result<Vec<String>, ProjectError> {
        let mut actors: Vec<String> = self
            .history(&project.id)
            .await?
            .into_iter()
            .filter(|h| matches!(h.to, Status::Draft | Status::Submitted))
            .map(|h| h.actor)
            .collect();
        actors.push(project.created_by.clone());
        actors.extend(project.updated_by.clone());
        actors.sort_unstable();
        actors.dedup();
        Ok(actors)
    }

    async fn every<T: for<'de> Deserialize<'de>>(
        &self,
        query: Query,
    ) -> Result<Vec<T>, ProjectError> {
        Ok(items::query_all_as(self.table.as_ref(), &query).await?)
    }
}

/// Most documents one project holds.
pub const MAX_DOCUMENTS: u64 = 100;

/// The project item's count of documents it may still take.
const DOCUMENT_SLOTS: &str = "documentSlots";

/// A project's document and the state of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: String,
    pub kind: DocumentKind,
    pub filename: String,
    pub upload_id: String,
    pub state: DocumentState,
    /// Why the check refused the file.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The event of a project's move to its current status: the notice's deduplication key.
pub fn status_event(project: &Project) -> String {
    format!("project-status:{}:{}", project.id, project.history_seq)
}

/// The notification of a project's move to its current status (`None` for the moves its owner
/// made, which nobody is told of).
pub(crate) fn status_notice(
    project: &Project,
    notes: Option<&str>,
    at: DateTime<Utc>,
) -> Option<amanar_core::messages::Notify> {
    use amanar_core::messages::{NotificationKind, Notify, Recipient};
    let name = &project.fields.name;
    let (title, said) = match project.status {
        Status::UnderReview => (
            "Your project is under review",
            format!("A verifier took {name} for review."),
        ),
        Status::ChangesRequested => (
            "Changes requested on your project",
            format!(
                "The verifier asks for changes to {name} before approving it; edit it and submit it again."
            ),
        ),
        Status::Approved => (
            "Your project is approved",
            format!(
                "{name} is approved: credits may be issued for it, and it shows in the public catalogue."
            ),
        ),
        Status::Rejected => ("Your project was rejected", format!("{name} was rejected.")),
        _ => return None,
    };
    let body = match notes {
        Some(notes) => format!("{said}\n\nThe verifier's notes: {notes}"),
        None => said,
    };
    Some(Notify {
        event: status_event(project),
        kind: NotificationKind::ProjectStatusChanged,
        recipient: Recipient::for_owner(&project.owner, None)?,
        title: title.to_owned(),
        body,
        link: Some(format!("/v1/projects/{}", project.id)),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> ProjectFields {
        ProjectFields {
            name: "Bale Mountains Eco-region REDD+".into(),
            description: "Avoided deforestation in the Bale Mountains.".into(),
            category: "forest".into(),
            project_type: "avoided forest conversion".into(),
            protocol: Some("vm0015".into()),
            standard: Standard::Vcs,
            mechanism: Mechanism::Avoidance,
            issuance_type: IssuanceType::ExPost,
            country: "ET".into(),
            location: Some(Location {
                latitude: 6.7,
                longitude: 39.7,
                name: None,
            }),
            sdgs: vec![13, 15],
            labels: vec![Label::Ccb],
            permanence_years: Some(100),
            registry_project_id: Some("VCS1340".into()),
            registry_url: Some("https://registry.verra.org/app/projectDetail/VCS/1340".into()),
        }
    }

    #[test]
    fn a_sound_project_passes_and_each_bad_field_is_named() {
        assert_eq!(check(&fields()), vec![]);
        type Change = Box<dyn Fn(&mut ProjectFields)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|f| f.name = " ".into()), "name"),
            (
                Box::new(|f| f.project_type = "teleportation".into()),
                "projectType",
            ),
            (
                Box::new(|f| f.category = "renewable-energy".into()),
                "category",
            ),
            (Box::new(|f| f.protocol = Some("vm9999".into())), "protocol"),
            (Box::new(|f| f.country = "XX".into()), "country"),
            (Box::new(|f| f.country = "et".into()), "country"),
            (Box::new(|f| f.sdgs = vec![0]), "sdgs"),
            (Box::new(|f| f.sdgs = vec![13, 13]), "sdgs"),
            (
                Box::new(|f| f.labels = vec![Label::Ccb, Label::Ccb]),
                "labels",
            ),
            (
                Box::new(|f| f.location.as_mut().unwrap().latitude = 91.0),
                "location.latitude",
            ),
            (
                Box::new(|f| f.registry_url = Some("http://x".into())),
                "registryUrl",
            ),
            (
                Box::new(|f| f.standard = Standard::Native),
                "registryProjectId",
            ),
            (
                Box::new(|f| f.permanence_years = Some(0)),
                "permanenceYears",
            ),
        ];
        for (change, field) in cases {
            let mut f = fields();
            change(&mut f);
            let problems = check(&f);
            assert!(
                problems.iter().any(|p| p.field == field),
                "{field}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_link_is_https_with_a_host_and_nothing_that_passes_for_one() {
        for good in [
            "https://registry.verra.org/app/projectDetail/VCS/1340",
            "https://bezerocarbon.com",
            "https://example.org:8443/r?id=1#top",
            "https://example.org/caf%C3%A9",
        ] {
            assert!(is_https_url(good, 500), "{good}");
        }
        for bad in [
            "http://registry.verra.org/",
            "https://",
            "https:///path",
            "https://registry.verra.org@evil.example/",
            "https://user:pw@evil.example/",
            "https://registry.verra.org\\@evil.example/",
            "https://evil.example:port/",
            "https://example.org:99999/",
            "https://example.org:0/",
            "https://a b.org/",
            "https://example.org/a b",
            "https://example.org/\u{202E}gpj.exe",
            "https://example.org/\u{2060}",
            "https://caf\u{e9}.example/",
            "https://localhost/",
            "https://2130706433/",
            "https://127.0.0.1/",
            "https://a..b/",
            "https://-a.example/",
            "https://./",
            "javascript:alert(1)",
        ] {
            assert!(!is_https_url(bad, 500), "{bad}");
        }
        let at_most = format!("https://example.org/{}", "a".repeat(480));
        assert_eq!(at_most.len(), 500);
        assert!(is_https_url(&at_most, 500));
        assert!(!is_https_url(&format!("{at_most}a"), 500));
    }

    #[test]
    fn the_country_list_is_iso_3166_alpha_2() {
        assert!(is_country("ET") && is_country("BR") && is_country("US"));
        assert!(!is_country("UK"), "the United Kingdom is GB");
        assert_eq!(COUNTRIES.lines().count(), 249);
    }
}
