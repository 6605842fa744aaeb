//! Verified-buyer ratings on both faces: only marked buyers rate, one rating per buyer that
//! edits move the totals by the difference, concurrent edits of one rating never count twice,
//! and pages never carry the author's user id.

use std::sync::Arc;

use amanar_core::table::Table;
use amanar_marketplace::buyer_ratings::{BuyerRatings, RatingError, verified_buyer_op};
use amanar_testkit::{both_faces, namespace};
use base64::Engine;
use chrono::Utc;

async fn buyer(table: &Arc<dyn Table>, project: &str) -> String {
    let user = format!("usr_{}", namespace());
    table
        .write(vec![verified_buyer_op(project, &user, "ord_1")])
        .await
        .unwrap();
    user
}

async fn only_buyers_rate_and_totals_follow_every_edit(table: Arc<dyn Table>) {
    let store = BuyerRatings::new(table.clone());
    let project = format!("prj_{}", namespace());
    let stranger = format!("usr_{}", namespace());
    assert!(matches!(
        store.rate(&project, &stranger, 5, "", Utc::now()).await,
        Err(RatingError::NotBuyer)
    ));
    let (a, b) = (buyer(&table, &project).await, buyer(&table, &project).await);
    assert!(
        store
            .rate(&project, &a, 2, "meh", Utc::now())
            .await
            .unwrap()
            .1
    );
    assert!(
        store
            .rate(&project, &b, 5, "great", Utc::now())
            .await
            .unwrap()
            .1
    );
    let (edited, first) = store
        .rate(&project, &a, 4, "better", Utc::now())
        .await
        .unwrap();
    assert!(!first);
    assert_eq!(edited.version, 2);
    let totals = store.totals(&project).await.unwrap();
    assert_eq!((totals.count, totals.stars), (2, 9));
    assert_eq!(totals.summary().average, Some(4.5));

    // A page's cursor names the rating's key, never its author.
    let (page, next) = store.of_project(&project, 1, None).await.unwrap();
    assert_eq!(page.len(), 1);
    let cursor = next.expect("a second page");
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_str())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| cursor.as_str().to_owned());
    assert!(!decoded.contains(&a) && !decoded.contains(&b), "{decoded}");
    let (rest, _) = store.of_project(&project, 10, Some(cursor)).await.unwrap();
    assert_eq!(rest.len(), 1);
}

async fn concurrent_edits_of_one_rating_count_once(table: Arc<dyn Table>) {
    let store = BuyerRatings::new(table.clone());
    let project = format!("prj_{}", namespace());
    let user = buyer(&table, &project).await;
    let mut tasks = Vec::new();
    for stars in 1..=5u8 {
        let (store, project, user) = (store.clone(), project.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            store.rate(&project, &user, stars, "", Utc::now()).await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok((rating, _)) => won.push(rating),
            Err(RatingError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!won.is_empty());
    let stored = store.get(&project, &user).await.unwrap().unwrap();
    let totals = store.totals(&project).await.unwrap();
    assert_eq!(totals.count, 1, "one buyer, one rating");
    assert_eq!(
        totals.stars,
        u64::from(stored.stars),
        "the totals are the stored rating"
    );
}

both_faces!(
    only_buyers_rate_and_totals_follow_every_edit,
    concurrent_edits_of_one_rating_count_once,
);
