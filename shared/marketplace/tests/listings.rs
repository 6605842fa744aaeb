//! Listings and the catalogue on both faces: listing moves credits into the listing's account,
//! closing moves them back, concurrent sales never oversell, and the catalogue's index follows the
//! feed.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::clock::SystemClock;
use amanar_core::table::Table;
use amanar_marketplace::catalogue::{Catalogue, Search, Sort};
use amanar_marketplace::fixtures;
use amanar_marketplace::ledger::{
    Account, Ledger, LedgerError, NewIssuance, Transfer, check_blocks,
};
use amanar_marketplace::listings::{
    EventKind, ListingChange, ListingError, ListingStatus, Listings, NewListing, reserve_guard,
};
use amanar_marketplace::money::Money;
use amanar_marketplace::projects::{Label, Project};
use amanar_marketplace::serial::{self, Standard, Vintage};
use amanar_testkit::namespace;
use chrono::Utc;

use amanar_testkit::both_faces;

fn price(amount: &str, currency: &str) -> Money {
    Money::parse(amount, currency).unwrap()
}

/// An approved project of `owner`, named with a word of its own for searches.
async fn approved(table: &Arc<dyn Table>, owner: &str, word: &str, country: &str) -> Project {
    let mut fields = fixtures::forest(&format!("{word} community forest"), country);
    fields.protocol = Some("vm0015".into());
    fields.sdgs = vec![13, 15];
    fields.labels = vec![Label::Ccb];
    fixtures::approved(table, &format!("prj_{}", namespace()), owner, fields).await
}

/// A native issuance of `quantity` credits of the project into the owner's inventory.
async fn issued(table: &Arc<dyn Table>, project: &Project, quantity: u64, year: i32) -> String {
    let id = format!("iss_{}", namespace());
    Ledger::new(table.clone())
        .issue(NewIssuance {
            serial: serial::parse(Standard::Native, &format!("AMC-{id}-1-{quantity}")).unwrap(),
            id: id.clone(),
            project_id: project.id.clone(),
            vintage: Vintage::Year(year),
            buffer: 0,
            inventory_owner: project.owner.clone(),
            issued_by: "user:usr_verifier".into(),
            issued_at: Utc::now(),
        })
        .await
        .unwrap();
    id
}

fn listing_of(project: &Project, issuance: &str, quantity: u64, unit_price: Money) -> NewListing {
    NewListing {
        id: format!("lst_{}", namespace()),
        project_id: project.id.clone(),
        issuance_id: issuance.into(),
        seller: project.owner.clone(),
        standard: Standard::Native,
        vintage: Vintage::Year(2022),
        quantity,
        unit_price,
        actor: "user:usr_dev".into(),
        now: Utc::now(),
    }
}

async fn listing_moves_credits_and_closing_returns_them(table: Arc<dyn Table>) {
    let owner = format!("ORG#org_{}", namespace());
    let project = approved(&table, &owner, "alpha", "KE").await;
    let issuance = issued(&table, &project, 100, 2022).await;
    let listings = Listings::new(table.clone());
    let ledger = Ledger::new(table.clone());

    let listing = listings
        .create(listing_of(&project, &issuance, 60, price("12.5", "USD")))
        .await
        .unwrap();
    assert_eq!(listing.unit_price.amount().to_string(), "12.50");
    let listed = Account::Listing(listing.id.clone());
    assert_eq!(ledger.balance(&listed, Some(&issuance)).await.unwrap(), 60);
    let inventory = Account::Inventory(owner.clone());
    assert_eq!(
        ledger.balance(&inventory, Some(&issuance)).await.unwrap(),
        40
    );

    // More than the inventory holds: refused, nothing written.
    let too_many = listings
        .create(listing_of(&project, &issuance, 41, price("10", "USD")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_many,
            ListingError::Insufficient {
                available: 40,
                requested: 41
            }
        ),
        "{too_many:?}"
    );

    let now = Utc::now();
    let repriced = listings
        .change(
            &listing.id,
            &ListingChange {
                unit_price: Some(price("14", "USD")),
                ..Default::default()
            },
            "user:usr_dev",
            now,
        )
        .await
        .unwrap();
    assert_eq!(repriced.version, 2);
    let paused = listings
        .change(
            &listing.id,
            &ListingChange {
                status: Some(ListingStatus::Paused),
                version: Some(2),
                ..Default::default()
            },
            "user:usr_dev",
            now,
        )
        .await
        .unwrap();
    assert_eq!(paused.status, ListingStatus::Paused);
    // A stale version is refused; another currency is refused.
    let stale = listings
        .change(
            &listing.id,
            &ListingChange {
                status: Some(ListingStatus::Active),
                version: Some(2),
                ..Default::default()
            },
            "user:usr_dev",
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, ListingError::Version { current: 3 }),
        "{stale:?}"
    );
    let euros = listings
        .change(
            &listing.id,
            &ListingChange {
                unit_price: Some(price("14", "EUR")),
                ..Default::default()
            },
            "user:usr_dev",
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(euros, ListingError::Currency("USD")), "{euros:?}");

    let closed = listings
        .close(&listing.id, None, "user:usr_dev", now)
        .await
        .unwrap();
    assert_eq!(
        (closed.status, closed.available),
        (ListingStatus::Closed, 0)
    );
    assert_eq!(ledger.balance(&listed, Some(&issuance)).await.unwrap(), 0);
    assert_eq!(
        ledger.balance(&inventory, Some(&issuance)).await.unwrap(),
        100
    );
    // Closing again changes nothing; a change of a closed listing is refused.
    listings
        .close(&listing.id, None, "user:usr_dev", now)
        .await
        .unwrap();
    assert!(matches!(
        listings
            .change(
                &listing.id,
                &ListingChange {
                    status: Some(ListingStatus::Active),
                    ..Default::default()
                },
                "user:usr_dev",
                now,
            )
            .await
            .unwrap_err(),
        ListingError::State { .. }
    ));
    let (history, next) = listings.history(&listing.id, 100, None).await.unwrap();
    assert!(next.is_none());
    let kinds: Vec<EventKind> = history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::PriceChanged,
            EventKind::Paused,
            EventKind::Closed
        ]
    );
    let (first, next) = listings.history(&listing.id, 2, None).await.unwrap();
    assert_eq!(first.len(), 2);
    let (rest, _) = listings.history(&listing.id, 2, next).await.unwrap();
    assert_eq!(
        [first, rest].concat(),
        history,
        "two pages, no gap or repeat"
    );
    assert_eq!(history[1].previous_price, Some(price("12.50", "USD")));
    assert_eq!(history[3].quantity, Some(60));
}

/// 30 buyers reserve 3 tonnes each from a listing of 50 while the developer closes it: every
/// credit ends in exactly one place, the listing's count always equals its ledger account, and
/// nothing is sold after the close.
async fn concurrent_sales_and_a_close_never_oversell(table: Arc<dyn Table>) {
    let owner = format!("ORG#org_{}", namespace());
    let project = approved(&table, &owner, "beta", "KE").await;
    let issuance = issued(&table, &project, 50, 2022).await;
    let listings = Listings::new(table.clone());
    let listing = listings
        .create(listing_of(&project, &issuance, 50, price("9", "USD")))
        .await
        .unwrap();
    let mut buyers = Vec::new();
    for n in 0..30 {
        let table = table.clone();
        let listing_id = listing.id.clone();
        let issuance = issuance.clone();
        buyers.push(tokio::spawn(async move {
            let ledger = Ledger::new(table);
            let transfer = Transfer {
                id: format!("reserve:{listing_id}:{n}"),
                from: Account::Listing(listing_id.clone()),
                to: Account::Reserved(format!("ord_{n}")),
                quantity: 3,
                issuance,
            };
            let guard = reserve_guard(&listing_id, 3, 1, Utc::now());
            match ledger.transfer(&transfer, &[guard]).await {
                Ok(_) => 3,
                Err(LedgerError::Guard { .. } | LedgerError::Insufficient { .. }) => 0,
                Err(e) => panic!("{e:?}"),
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let closed = listings
        .close(&listing.id, None, "user:usr_dev", Utc::now())
        .await
        .unwrap();
    let mut sold = 0;
    for buyer in buyers {
        sold += buyer.await.unwrap();
    }
    let ledger = Ledger::new(table.clone());
    let blocks = ledger.blocks(&issuance).await.unwrap();
    check_blocks(&ledger.issuance(&issuance).await.unwrap().unwrap(), &blocks).unwrap();
    let returned = ledger
        .balance(&Account::Inventory(owner.clone()), Some(&issuance))
        .await
        .unwrap();
    assert!(sold <= 48, "sold {sold}");
    assert_eq!(sold + returned, 50, "sold {sold}, returned {returned}");
    assert_eq!(closed.available, 0);
    let stored = listings.get(&listing.id).await.unwrap().unwrap();
    assert_eq!(stored.available, 0);
    assert_eq!(
        ledger
            .balance(&Account::Listing(listing.id.clone()), Some(&issuance))
            .await
            .unwrap(),
        0
    );
}

async fn the_catalogue_follows_listings_and_projects(table: Arc<dyn Table>) {
    let word = format!(
        "gamma{}",
        namespace().to_lowercase().replace(['-', '_'], "")
    );
    let owner = format!("ORG#org_{}", namespace());
    let project = approved(&table, &owner, &word, "ET").await;
    let issuance = issued(&table, &project, 500, 2021).await;
    let catalogue = Catalogue::new(table.clone(), Arc::new(SystemClock), Duration::ZERO);
    let search = |extra: fn(&mut Search)| {
        let mut s = Search {
            text: vec![word.clone()],
            limit: 10,
            ..Default::default()
        };
        extra(&mut s);
        s
    };
    let found = catalogue.search(&search(|_| {})).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].available, 0);

    let listings = Listings::new(table.clone());
    let listing = listings
        .create(listing_of(&project, &issuance, 200, price("15.00", "USD")))
        .await
        .unwrap();
    let found = catalogue
        .search(&search(|s| {
            s.countries = vec!["ET".into()];
            s.categories = vec!["forest".into()];
            s.standards = vec![Standard::Native];
            s.min_available = Some(150);
            s.facets = true;
        }))
        .await
        .unwrap();
    assert_eq!(
        found.items.len(),
        1,
        "a new listing shows in the next search"
    );
    assert_eq!(found.items[0].available, 200);
    assert_eq!(found.items[0].prices[0].min, price("15", "USD"));
    let facets = found.facets.unwrap();
    assert_eq!(facets.country.get("ET"), Some(&1));

    listings
        .change(
            &listing.id,
            &ListingChange {
                unit_price: Some(price("11", "USD")),
                ..Default::default()
            },
            "user:usr_dev",
            Utc::now(),
        )
        .await
        .unwrap();
    let cheap = catalogue
        .search(&search(|s| {
            s.max_price = Some(Money::parse("12", "USD").unwrap());
        }))
        .await
        .unwrap();
    assert_eq!(
        cheap.items.len(),
        1,
        "a price change shows in the next search"
    );
    let none = catalogue
        .search(&search(|s| s.countries = vec!["KE".into()]))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    listings
        .change(
            &listing.id,
            &ListingChange {
                status: Some(ListingStatus::Paused),
                ..Default::default()
            },
            "user:usr_dev",
            Utc::now(),
        )
        .await
        .unwrap();
    let paused = catalogue.search(&search(|_| {})).await.unwrap();
    assert_eq!(
        paused.items[0].available, 0,
        "a paused listing offers nothing"
    );

    // A fresh instance (another Lambda) loads the same state from the feed.
    let other = Catalogue::new(
        table.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(60),
    );
    let found = other.search(&search(|_| {})).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert!(found.items[0].offers.is_empty());
}

/// Cursors page through a sort without repeating or skipping a project.
async fn cursors_walk_every_project_once(table: Arc<dyn Table>) {
    let word = format!(
        "delta{}",
        namespace().to_lowercase().replace(['-', '_'], "")
    );
    let owner = format!("ORG#org_{}", namespace());
    let listings = Listings::new(table.clone());
    let mut ids = Vec::new();
    for n in 0..7 {
        let project = approved(&table, &owner, &word, "BR").await;
        let issuance = issued(&table, &project, 100, 2020 + n).await;
        listings
            .create(listing_of(
                &project,
                &issuance,
                10 + n as u64,
                price("5", "EUR"),
            ))
            .await
            .unwrap();
        ids.push(project.id);
    }
    let catalogue = Catalogue::new(table, Arc::new(SystemClock), Duration::ZERO);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalogue
            .search(&Search {
                text: vec![word.clone()],
                sort: Sort::Available,
                descending: true,
                limit: 3,
                after: after.take(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.items.iter().map(|i| (i.available, i.id.clone())));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let available: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(available, [16, 15, 14, 13, 12, 11, 10]);
    let mut found: Vec<String> = seen.into_iter().map(|s| s.1).collect();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);
}

both_faces!(
    listing_moves_credits_and_closing_returns_them,
    concurrent_sales_and_a_close_never_oversell,
    the_catalogue_follows_listings_and_projects,
    cursors_walk_every_project_once,
);

/// The demo catalogue loads through the same checks as any issuance, twice without change, and
/// the catalogue finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_catalogue_loads_once_and_is_searchable() {
    use amanar_marketplace::demo;
    use amanar_marketplace::issuance::BufferPolicy;
    let dir = tempfile::tempdir().unwrap();
    let table: Arc<dyn Table> = Arc::new(
        amanar_embedded::EmbeddedStore::open(dir.path())
            .unwrap()
            .table,
    );
    let policy = BufferPolicy::parse("").unwrap();
    let first = demo::seed(table.clone(), &policy, Utc::now())
        .await
        .unwrap();
    assert!(first.projects >= 80 && first.listings >= 120, "{first:?}");
    assert_eq!(first.skipped, 0);
    let again = demo::seed(table.clone(), &policy, Utc::now())
        .await
        .unwrap();
    assert_eq!(again, first);
    let catalogue = Catalogue::new(table.clone(), Arc::new(SystemClock), Duration::ZERO);
    let all = catalogue
        .search(&Search {
            limit: 100,
            facets: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total as usize, first.projects);
    let facets = all.facets.unwrap();
    assert!(facets.standard.len() >= 5, "{facets:?}");
    let bale = catalogue
        .search(&Search {
            text: vec!["guyana".into()],
            standards: vec![Standard::Art],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(bale.total, 1);
    let item = &bale.items[0];
    assert_eq!(item.fields.country, "GY");
    assert!(item.available > 0 && !item.vintages.is_empty());
    // Every listing holds exactly what its ledger account holds.
    let ledger = Ledger::new(table.clone());
    for offer in &item.offers {
        let held = ledger
            .balance(
                &Account::Listing(offer.listing_id.clone()),
                Some(&offer.issuance_id),
            )
            .await
            .unwrap();
        assert_eq!(held, offer.available);
    }
}

/// A project opens at most 100 listings at a time; closing one gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_has_at_most_a_hundred_open_listings() {
    use amanar_marketplace::listings::MAX_OPEN_LISTINGS;
    let table = amanar_testkit::tables::embedded();
    let owner = format!("ORG#org_{}", namespace());
    let project = approved(&table, &owner, "epsilon", "KE").await;
    let issuance = issued(&table, &project, 200, 2022).await;
    let listings = Listings::new(table.clone());
    let mut first = None;
    for _ in 0..MAX_OPEN_LISTINGS {
        let made = listings
            .create(listing_of(&project, &issuance, 1, price("3", "USD")))
            .await
            .unwrap();
        first.get_or_insert(made.id);
    }
    let refused = listings
        .create(listing_of(&project, &issuance, 1, price("3", "USD")))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ListingError::TooManyListings),
        "{refused:?}"
    );
    listings
        .close(first.as_deref().unwrap(), None, "user:usr_dev", Utc::now())
        .await
        .unwrap();
    listings
        .create(listing_of(&project, &issuance, 1, price("3", "USD")))
        .await
        .unwrap();
    assert_eq!(
        Ledger::new(table)
            .balance(&Account::Inventory(owner), Some(&issuance))
            .await
            .unwrap(),
        100,
        "the refused listing moved nothing"
    );
}
