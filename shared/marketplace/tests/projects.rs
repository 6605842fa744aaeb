//! Projects and the verification workflow on both faces: the embedded table and DynamoDB on moto.

use amanar_testkit::both_faces;

use std::sync::Arc;

use amanar_core::table::Table;
use amanar_marketplace::projects::{
    Decision, Document, DocumentKind, DocumentState, IssuanceType, Label, Mechanism, ProjectError,
    ProjectFields, Projects, Status,
};
use amanar_marketplace::ratings::{NewRating, RatingScope};
use amanar_marketplace::serial::Standard;
use amanar_testkit::namespace;
use chrono::{NaiveDate, Utc};

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
        location: None,
        sdgs: vec![13, 15],
        labels: vec![Label::Ccb],
        permanence_years: None,
        registry_project_id: Some("VCS1340".into()),
        registry_url: None,
    }
}

const DEVELOPER: &str = "USER#usr_dev";
const DEVELOPER_SUBJECT: &str = "user:usr_dev";
const VERIFIER: &str = "user:usr_verifier";

async fn draft(projects: &Projects) -> String {
    let id = format!("prj_{}", namespace());
    projects
        .create(&id, DEVELOPER, fields(), DEVELOPER_SUBJECT, Utc::now())
        .await
        .unwrap();
    id
}

async fn accepted_design(projects: &Projects, id: &str) {
    let document = Document {
        id: format!("doc_{}", namespace()),
        kind: DocumentKind::ProjectDesign,
        filename: "pdd.pdf".into(),
        upload_id: format!("upl_{}", namespace()),
        state: DocumentState::Pending,
        reason: None,
        created_at: Utc::now(),
    };
    projects
        .declare_document(id, &document, vec![])
        .await
        .unwrap();
    assert!(
        !projects
            .settle_document(
                id,
                &document.id,
                "upl_other",
                DocumentState::Accepted,
                None,
                Utc::now()
            )
            .await
            .unwrap(),
        "only the document's own upload settles it"
    );
    assert!(
        projects
            .settle_document(
                id,
                &document.id,
                &document.upload_id,
                DocumentState::Accepted,
                None,
                Utc::now()
            )
            .await
            .unwrap()
    );
    assert!(
        !projects
            .settle_document(
                id,
                &document.id,
                &document.upload_id,
                DocumentState::Rejected,
                None,
                Utc::now()
            )
            .await
            .unwrap(),
        "a settled document stays settled"
    );
}

async fn a_project_goes_through_changes_to_approval_and_records_each_move(table: Arc<dyn Table>) {
    let projects = Projects::new(table.clone());
    let id = draft(&projects).await;
    assert_eq!(
        projects
            .submit(&id, DEVELOPER_SUBJECT, Utc::now())
            .await
            .unwrap_err(),
        ProjectError::NoDesignDocument
    );
    accepted_design(&projects, &id).await;
    let submitted = projects
        .submit(&id, DEVELOPER_SUBJECT, Utc::now())
        .await
        .unwrap();
    assert_eq!(submitted.status, Status::Submitted);
    let (queue, _) = projects.queue(Status::Submitted, 100, None).await.unwrap();
    assert!(
        queue.iter().any(|p| p.id == id),
        "a submitted project waits in the queue"
    );

    assert_eq!(
        projects
            .edit(
                &id,
                submitted.version,
                fields(),
                DEVELOPER_SUBJECT,
                Utc::now()
            )
            .await
            .unwrap_err(),
        ProjectError::State {
            current: "submitted"
        },
        "a submitted project is not editable"
    );
    let late = document(DocumentKind::Other);
    assert_eq!(
        projects
            .declare_document(&id, &late, vec![])
            .await
            .unwrap_err(),
        ProjectError::State {
            current: "submitted"
        },
        "documents are added while the project is editable"
    );
    let taken = projects.take(&id, VERIFIER, Utc::now()).await.unwrap();
    assert_eq!(taken.reviewer.as_deref(), Some(VERIFIER));
    assert_eq!(
        projects
            .decide(
                &id,
                "user:usr_other_verifier",
                Decision::Approve,
                None,
                Utc::now()
            )
            .await
            .unwrap_err(),
        ProjectError::NotYourReview,
        "only the verifier who took it decides"
    );
    let (queue, _) = projects.queue(Status::Submitted, 100, None).await.unwrap();
    assert!(
        !queue.iter().any(|p| p.id == id),
        "taken off the submitted queue"
    );
    let changes = projects
        .decide(
            &id,
            VERIFIER,
            Decision::RequestChanges,
            Some("Add the monitoring plan".into()),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(changes.status, Status::ChangesRequested);
    // The owner's notice of the move went into the outbox in the move's own write, notes and all.
    let staged = table
        .get(&amanar_core::keys::outbox(&amanar_core::outbox::id(
            &amanar_marketplace::projects::status_event(&changes),
        )))
        .await
        .unwrap()
        .expect("the notice of the move, in the outbox");
    assert!(
        staged["body"]
            .as_str()
            .unwrap()
            .contains("Add the monitoring plan"),
        "{staged:?}"
    );

    let mut edited_fields = fields();
    edited_fields
        .description
        .push_str(" Monitoring plan attached.");
    assert_eq!(
        projects
            .edit(
                &id,
                changes.version - 1,
                edited_fields.clone(),
                DEVELOPER_SUBJECT,
                Utc::now()
            )
            .await
            .unwrap_err(),
        ProjectError::Version {
            current: changes.version
        },
        "an edit of an older version is refused"
    );
    let edited = projects
        .edit(
            &id,
            changes.version,
            edited_fields,
            DEVELOPER_SUBJECT,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(edited.updated_by.as_deref(), Some(DEVELOPER_SUBJECT));
    projects
        .submit(&id, DEVELOPER_SUBJECT, Utc::now())
        .await
        .unwrap();
    projects.take(&id, VERIFIER, Utc::now()).await.unwrap();
    let approved = projects
        .decide(&id, VERIFIER, Decision::Approve, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(
        projects.get(&id).await.unwrap().unwrap().fields,
        edited.fields
    );

    let history = projects.history(&id).await.unwrap();
    let moves: Vec<(Option<Status>, Status)> = history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        moves,
        [
            (None, Status::Draft),
            (Some(Status::Draft), Status::Submitted),
            (Some(Status::Submitted), Status::UnderReview),
            (Some(Status::UnderReview), Status::ChangesRequested),
            (Some(Status::ChangesRequested), Status::Submitted),
            (Some(Status::Submitted), Status::UnderReview),
            (Some(Status::UnderReview), Status::Approved),
        ]
    );
    assert_eq!(history[3].notes.as_deref(), Some("Add the monitoring plan"));
    assert_eq!(history[3].actor, VERIFIER);

    // The moves form a hash chain whose head the project holds; any change to a recorded move,
    // a removed one or an inserted one breaks it.
    let stored = projects.get(&id).await.unwrap().unwrap();
    assert!(amanar_marketplace::projects::chain_is_intact(
        &stored, &history
    ));
    assert_eq!(stored.history_seq, 7);
    let mut altered = history.clone();
    altered[3].notes = Some("Looks fine".into());
    assert!(!amanar_marketplace::projects::chain_is_intact(
        &stored, &altered
    ));
    let mut removed = history.clone();
    removed.remove(3);
    assert!(!amanar_marketplace::projects::chain_is_intact(
        &stored, &removed
    ));
    assert!(!amanar_marketplace::projects::chain_is_intact(
        &stored,
        &history[..6]
    ));

    let involved = projects.involved(&stored).await.unwrap();
    assert!(
        involved.contains(&DEVELOPER_SUBJECT.to_owned()),
        "{involved:?}"
    );
    assert!(
        !involved.contains(&VERIFIER.to_owned()),
        "a reviewer's own moves do not make them involved"
    );

    // An illegal move names where the project is.
    assert_eq!(
        projects.take(&id, VERIFIER, Utc::now()).await.unwrap_err(),
        ProjectError::State {
            current: "approved"
        }
    );
}

async fn of_two_concurrent_decisions_exactly_one_lands(table: Arc<dyn Table>) {
    let projects = Projects::new(table);
    let id = draft(&projects).await;
    accepted_design(&projects, &id).await;
    projects
        .submit(&id, DEVELOPER_SUBJECT, Utc::now())
        .await
        .unwrap();
    projects.take(&id, VERIFIER, Utc::now()).await.unwrap();
    let (a, b) = tokio::join!(
        projects.decide(&id, VERIFIER, Decision::Approve, None, Utc::now()),
        projects.decide(
            &id,
            VERIFIER,
            Decision::Reject,
            Some("Double counted".into()),
            Utc::now()
        ),
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} / {b:?}");
    let lost = if a.is_ok() { b } else { a };
    assert!(
        matches!(
            lost,
            Err(ProjectError::State {
                current: "approved" | "rejected"
            })
        ),
        "the loser learns the state it lost to: {lost:?}"
    );
    let history = projects.history(&id).await.unwrap();
    assert_eq!(history.len(), 4, "one decision recorded: {history:?}");
    let stored = projects.get(&id).await.unwrap().unwrap();
    assert!(
        amanar_marketplace::projects::chain_is_intact(&stored, &history),
        "the losing decision left no fork in the chain"
    );
}

fn document(kind: DocumentKind) -> Document {
    Document {
        id: format!("doc_{}", namespace()),
        kind,
        filename: "x.pdf".into(),
        upload_id: format!("upl_{}", namespace()),
        state: DocumentState::Pending,
        reason: None,
        created_at: Utc::now(),
    }
}

async fn concurrent_declarations_never_exceed_the_document_limit(table: Arc<dyn Table>) {
    let projects = Projects::new(table);
    let id = draft(&projects).await;
    let tasks: Vec<_> = (0..110)
        .map(|_| {
            let (projects, id) = (projects.clone(), id.clone());
            tokio::spawn(async move {
                projects
                    .declare_document(&id, &document(DocumentKind::Other), vec![])
                    .await
            })
        })
        .collect();
    let mut declared = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => declared += 1,
            Err(ProjectError::TooManyDocuments) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(declared, 100);
    assert_eq!(
        projects.documents(&id).await.unwrap().len(),
        100,
        "every page is read"
    );
}

async fn a_document_of_a_missing_project_is_refused(table: Arc<dyn Table>) {
    let projects = Projects::new(table);
    let document = document(DocumentKind::Other);
    assert_eq!(
        projects
            .declare_document(&format!("prj_{}", namespace()), &document, vec![])
            .await
            .unwrap_err(),
        ProjectError::NotFound
    );
}

async fn approved(projects: &Projects) -> String {
    let id = draft(projects).await;
    accepted_design(projects, &id).await;
    projects
        .submit(&id, DEVELOPER_SUBJECT, Utc::now())
        .await
        .unwrap();
    projects.take(&id, VERIFIER, Utc::now()).await.unwrap();
    projects
        .decide(&id, VERIFIER, Decision::Approve, None, Utc::now())
        .await
        .unwrap();
    id
}

fn bezero(grade: &str) -> NewRating {
    NewRating {
        agency: "bezero".into(),
        scale: None,
        grade: grade.into(),
        rated_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        scope: RatingScope::Project,
        vintage: None,
        source_url: "https://bezerocarbon.com/".into(),
    }
}

async fn a_retried_rating_is_recorded_once_and_a_reused_id_is_refused(table: Arc<dyn Table>) {
    let projects = Projects::new(table);
    let id = approved(&projects).await;
    let before = projects.get(&id).await.unwrap().unwrap();
    assert_eq!(before.approved_at, Some(before.updated_at));
    let rating = bezero("A").into_rating("rat_1".into(), "user:admin", Utc::now());
    // Two concurrent retries of one request, then a late third: one rating between them.
    let (a, b) = tokio::join!(
        projects.rate(&id, rating.clone(), Utc::now()),
        projects.rate(&id, rating.clone(), Utc::now()),
    );
    assert_eq!(a.unwrap(), rating);
    assert_eq!(b.unwrap(), rating);
    let late = bezero("A").into_rating("rat_1".into(), "user:admin", Utc::now());
    assert_eq!(projects.rate(&id, late, Utc::now()).await.unwrap(), rating);
    let stored = projects.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.agency_ratings, vec![rating]);
    assert_eq!(
        stored.updated_at, before.updated_at,
        "a rating leaves updatedAt (and so the approval time older projects fall back on)"
    );
    let other = bezero("B").into_rating("rat_1".into(), "user:admin", Utc::now());
    assert_eq!(
        projects.rate(&id, other, Utc::now()).await.unwrap_err(),
        ProjectError::RatingReused
    );
}

both_faces!(
    a_retried_rating_is_recorded_once_and_a_reused_id_is_refused,
    a_project_goes_through_changes_to_approval_and_records_each_move,
    of_two_concurrent_decisions_exactly_one_lands,
    a_document_of_a_missing_project_is_refused,
    concurrent_declarations_never_exceed_the_document_limit,
);
