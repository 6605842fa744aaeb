//! The public catalogue: approved projects with what their listings offer, searched in memory.
//!
//! Design (measured in BENCHMARKS.md): every approved project and every listing sits in the
//! catalogue feed, GSI2 partitions `CATALOGUE#0..3`, once each, sorted by when it last changed. A
//! search function loads the feed whole on its first request (four queries, no scan), builds an
//! in-memory index, and on later requests reads only what changed since its last refresh (minus
//! a look-back that covers index lag and clock skew between writers), at most once per refresh
//! interval: every request in the local runtime, every second by default on AWS. A change to a
//! listing is thus visible to the next search locally and within about a second on AWS.
//!
//! The index keeps one bitmap ([`roaring`]) per filterable value (standard, country, category,
//! type, protocol, mechanism, label, SDG, rating agency) and per word of the name, description and
//! registry id. A search intersects the bitmaps of its filters, checks the numeric ones (price,
//! vintage, available tonnes, rating) on what is left, and selects the page by its sort key
//! without sorting the whole result. Facets count each value's bitmap against the result.
//!
//! Cursors are keyset positions (sort key and project id), so a page boundary holds while
//! listings change and across function instances.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use amanar_core::clock::Clock;
use amanar_core::keys;
use amanar_core::table::{
    Index as TableIndex, Item, Key, Query, SortKey, Table, TableError, items,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::buyer_ratings::{RatingSummary, RatingTotals};
use crate::listings::{Listing, ListingStatus};
use crate::money::Money;
use crate::projects::{Label, Mechanism, Project, ProjectFields, Status};
use crate::ratings::AgencyRating;
use crate::serial::{Standard, Vintage};

/// How far back each refresh reads before its previous one: longer than a GSI's replication lag
/// and the clock skew between writers, so no change falls between two refreshes.
/// A write's feed position is the time its request began; a write that retries under contention
/// or throttling can commit seconds later (a Lambda runs at most 10 s), and a GSI lags a little
/// more, so a minute covers both with room.
const LOOK_BACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The longest `q` and the most words it may hold.
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_QUERY_WORDS: usize = 8;

/// What a search may ask for; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Words of the name, description or registry id; each must match (the word, or a word it
    /// begins when it has two characters or more).
    pub text: Vec<String>,
    /// Within one field, any of the values; across fields, all of them.
    pub standards: Vec<Standard>,
    pub countries: Vec<String>,
    pub categories: Vec<String>,
    pub project_types: Vec<String>,
    pub protocols: Vec<String>,
    pub mechanisms: Vec<Mechanism>,
    /// Every one of them.
    pub labels: Vec<Label>,
    /// Every one of them.
    pub sdgs: Vec<u8>,
    /// Offers a vintage in this range (years, inclusive).
    pub vintage_from: Option<i32>,
    pub vintage_to: Option<i32>,
    /// The currency of the price filters and of the price sort (USD when not given).
    pub currency: Option<&'static str>,
    /// An active listing in the currency at or above / below this unit price.
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    pub min_available: Option<u64>,
    /// Rated by this agency, at this grade or better when given.
    pub rating_agency: Option<String>,
    pub min_rating: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Position>,
    pub facets: bool,
}

/// What a search sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// By when the project was approved.
    #[default]
    Approved,
    /// The lowest unit price in the search's currency.
    Price,
    /// The earliest vintage offered (descending: the latest).
    Vintage,
    Available,
    /// The best agency rating, as a share of its scale.
    Rating,
    /// The buyers' average stars.
    Stars,
}

/// A page boundary: the sort and the last item's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(rename = "s")]
    sort: Sort,
    #[serde(rename = "d")]
    descending: bool,
    #[serde(rename = "k")]
    key: i64,
    #[serde(rename = "t", default)]
    tiebreak: u64,
    /// The currency of a price sort.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(rename = "i")]
    id: String,
}

impl Position {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Option<Position> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether the position was made by a search with this sort (and, for a price sort, this
    /// currency).
    pub fn fits(&self, sort: Sort, descending: bool, currency: &str) -> bool {
        self.sort == sort
            && self.descending == descending
            && (sort != Sort::Price || self.currency.as_deref() == Some(currency))
    }
}

/// What a listing offers, as the catalogue shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub listing_id: String,
    pub issuance_id: String,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    pub unit_price: Money,
    pub available: u64,
}

/// The lowest and highest unit price offered in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceRange {
    pub min: Money,
    pub max: Money,
}

/// One project in the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueItem {
    pub id: String,
    #[serde(flatten)]
    pub fields: ProjectFields,
    /// Per currency offered.
    pub prices: Vec<PriceRange>,
    /// Tonnes on sale across its active listings.
    pub available: u64,
    /// Vintage years on sale.
    pub vintages: Vec<i32>,
    pub offers: Vec<Offer>,
    pub agency_ratings: Vec<AgencyRating>,
    /// Verified buyers' stars: the average and how many rated.
    pub buyer_ratings: RatingSummary,
    pub approved_at: DateTime<Utc>,
}

/// Counts per value of the fields a buyer narrows by, over the whole result.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    pub category: BTreeMap<String, u64>,
    pub country: BTreeMap<String, u64>,
    pub standard: BTreeMap<String, u64>,
    pub mechanism: BTreeMap<String, u64>,
}

/// A page of a search.
#[derive(Debug, Clone)]
pub struct Found {
    pub items: Vec<CatalogueItem>,
    pub next: Option<Position>,
    /// How many projects match in all.
    pub total: u64,
    pub facets: Option<Facets>,
}

// ---------------------------------------------------------------------------------------------
// The index

/// The kinds of value a bitmap stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Standard,
    Country,
    Category,
    Type,
    Protocol,
    Mechanism,
    Label,
    Sdg,
    Agency,
}

/// A project as the index holds it, with what its active listings offer.
struct Entry {
    project: Arc<Project>,
    terms: Vec<(Field, String)>,
    words: Vec<String>,
    offers: Vec<Offer>,
    /// Per currency: the lowest and highest price, in minor units and as money.
    prices: Vec<(&'static str, i64, i64, Money, Money)>,
    available: u64,
    vintages: Vec<i32>,
    /// Per agency: its grade's rank (0 is the best grade).
    ratings: Vec<(String, usize)>,
    buyer_ratings: RatingTotals,
}

/// What a search reads of every candidate, kept in one array beside the entries, so that a search
/// over many candidates reads a small contiguous array rather than each entry on the heap.
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    approved: i64,
    available: u64,
    /// The vintage years on sale; `vintage_min > vintage_max` when none.
    vintage_min: i32,
    vintage_max: i32,
    rating: Option<i64>,
    /// The buyers' average, in thousandths of a star.
    stars: Option<i64>,
    /// A hash of the project id: the order among equal sort keys, the same in every instance.
    tiebreak: u64,
    /// The lowest and highest price in minor units, when the project offers one currency only
    /// (`prices_in` reads the entry otherwise).
    price: Option<([u8; 3], i64, i64)>,
}

/// When a catalogue project was approved (the index holds approved projects only).
fn approved_at(project: &Project) -> DateTime<Utc> {
    project.approval_time().unwrap_or(project.updated_at)
}

/// The tie-breaker between projects with equal sort keys: stable across processes and builds, so
/// a cursor taken from one search function's index continues on another's.
fn tiebreak_of(id: &str) -> u64 {
    amanar_core::fnv1a(id.as_bytes())
}

/// The in-memory search index.
#[derive(Default)]
pub struct SearchIndex {
    slots: Vec<Option<Entry>>,
    facts: Vec<Facts>,
    by_project: HashMap<String, u32>,
    projects: HashMap<String, Arc<Project>>,
    /// Open listings, and the ids of each project's.
    listings: HashMap<String, Listing>,
    listings_of: HashMap<String, std::collections::BTreeSet<String>>,
    /// Listings seen closed: only their ids stay, so a stale copy never reopens one.
    closed: std::collections::HashSet<String>,
    /// Buyer-rating totals by project (kept for projects not approved yet too).
    buyer_ratings: HashMap<String, RatingTotals>,
    terms: HashMap<(Field, String), RoaringBitmap>,
    words: BTreeMap<String, RoaringBitmap>,
    live: RoaringBitmap,
}

/// Lower-case words of a text: each run of letters and digits, and its letter and digit parts
/// (`VCS1340` gives `vcs1340`, `vcs` and `1340`).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in text.split(|c: char| !c.is_alphanumeric()) {
        if run.is_empty() {
            continue;
        }
        let run = run.to_lowercase();
        let mut part = String::new();
        let mut digits = None;
        for c in run.chars() {
            let is_digit = c.is_ascii_digit();
            if digits.is_some_and(|d| d != is_digit) && !part.is_empty() {
                out.push(std::mem::take(&mut part));
            }
            digits = Some(is_digit);
            part.push(c);
        }
        if !part.is_empty() && part != run {
            out.push(part);
        }
        out.push(run);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn snake<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl SearchIndex {
    pub fn len(&self) -> usize {
        self.by_project.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_project.is_empty()
    }

    /// Applies one feed item: an approved project, or a listing in any state.
    pub fn apply(&mut self, item: Item) -> Result<(), TableError> {
        self.apply_all(vec![item])
    }

    /// Applies feed items: approved projects, and listings in any state. An item older than what
    /// the index holds is ignored, so applying a feed page twice changes nothing. Each project
    /// touched is rebuilt once, however many of its listings came.
    pub fn apply_all(&mut self, found: Vec<Item>) -> Result<(), TableError> {
        let mut touched = std::collections::BTreeSet::new();
        for item in found {
            let key = Key::of(&item)?;
            if key.pk.starts_with("PROJECT#") && key.sk == keys::BUYER_RATING_TOTALS {
                let totals: RatingTotals = match items::parse(item) {
                    Ok(totals) => totals,
                    Err(error) => {
                        tracing::warn!(pk = %key.pk, %error, "catalogue: unreadable rating totals left out");
                        continue;
                    }
                };
                let newer = self
                    .buyer_ratings
                    .get(&totals.project_id)
                    .is_none_or(|held| held.revision < totals.revision);
                if newer {
                    touched.insert(totals.project_id.clone());
                    self.buyer_ratings.insert(totals.project_id.clone(), totals);
                }
            } else if key.pk.starts_with("PROJECT#") {
                // An item this build cannot read (written by a newer one, or damaged) is left
                // out, never allowed to stop the catalogue.
                let project: Project = match items::parse(item) {
                    Ok(project) => project,
                    Err(error) => {
                        tracing::warn!(pk = %key.pk, %error, "catalogue: an unreadable project left out");
                        continue;
                    }
                };
                let newer = self
                    .projects
                    .get(&project.id)
                    .is_none_or(|held| held.version <= project.version);
                if newer && project.status == Status::Approved {
                    touched.insert(project.id.clone());
                    self.projects.insert(project.id.clone(), Arc::new(project));
                }
            } else if key.pk.starts_with("LISTING#") {
                let listing: Listing = match items::parse(item) {
                    Ok(listing) => listing,
                    Err(error) => {
                        tracing::warn!(pk = %key.pk, %error, "catalogue: an unreadable listing left out");
                        continue;
                    }
                };
                // Every write moves the revision, so an older state never replaces a newer one,
                // whatever the writers' clocks; a closed listing is gone for good.
                if self.closed.contains(&listing.id)
                    || self
                        .listings
                        .get(&listing.id)
                        .is_some_and(|held| held.revision > listing.revision)
                {
                    continue;
                }
                let project_id = listing.project_id.clone();
                let ids = self.listings_of.entry(project_id.clone()).or_default();
                if listing.status == ListingStatus::Closed {
                    ids.remove(&listing.id);
                    self.listings.remove(&listing.id);
                    self.closed.insert(listing.id);
                } else {
                    ids.insert(listing.id.clone());
                    self.listings.insert(listing.id.clone(), listing);
                }
                touched.insert(project_id);
            }
        }
        for project_id in touched {
            self.rebuild(&project_id);
        }
        Ok(())
    }

    /// Recomputes a project's entry from the project and its listings.
    fn rebuild(&mut self, project_id: &str) {
        let Some(project) = self.projects.get(project_id).cloned() else {
            return;
        };
        let mut offers: Vec<Offer> = self
            .listings_of
            .get(project_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.listings.get(id))
            .filter(|l| l.status == ListingStatus::Active && l.available > 0)
            .map(|l| Offer {
                listing_id: l.id.clone(),
                issuance_id: l.issuance_id.clone(),
                vintage: l.vintage,
                unit_price: l.unit_price,
                available: l.available,
            })
            .collect();
        offers.sort_by(|a, b| a.listing_id.cmp(&b.listing_id));
        let mut prices: Vec<(&'static str, i64, i64, Money, Money)> = Vec::new();
        for offer in &offers {
            let minor = offer.unit_price.minor_units();
            match prices
                .iter_mut()
                .find(|p| p.0 == offer.unit_price.currency())
            {
                Some(p) => {
                    if minor < p.1 {
                        p.1 = minor;
                        p.3 = offer.unit_price;
                    }
                    if minor > p.2 {
                        p.2 = minor;
                        p.4 = offer.unit_price;
                    }
                }
                None => prices.push((
                    offer.unit_price.currency(),
                    minor,
                    minor,
                    offer.unit_price,
                    offer.unit_price,
                )),
            }
        }
        prices.sort_by_key(|p| p.0);
        let mut vintages: Vec<i32> = offers.iter().map(|o| o.vintage.year()).collect();
        vintages.sort_unstable();
        vintages.dedup();
        let fields = &project.fields;
        let mut terms = vec![
            (Field::Standard, fields.standard.as_str().to_owned()),
            (Field::Country, fields.country.clone()),
            (Field::Category, fields.category.clone()),
            (Field::Type, fields.project_type.clone()),
            (Field::Mechanism, snake(fields.mechanism)),
        ];
        if let Some(protocol) = &fields.protocol {
            terms.push((Field::Protocol, protocol.clone()));
        }
        terms.extend(fields.labels.iter().map(|l| (Field::Label, snake(*l))));
        terms.extend(fields.sdgs.iter().map(|s| (Field::Sdg, s.to_string())));
        let ratings: Vec<(String, usize)> =
            crate::ratings::counted(&project.agency_ratings, &vintages)
                .into_iter()
                .filter_map(|r| Some((r.agency.clone(), r.rank()?)))
                .collect();
        terms.extend(ratings.iter().map(|(a, _)| (Field::Agency, a.clone())));
        terms.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
        terms.dedup();

        let mut text = format!("{} {}", fields.name, fields.description);
        if let Some(id) = &fields.registry_project_id {
            text.push(' ');
            text.push_str(id);
        }
        let entry = Entry {
            terms,
            words: words(&text),
            available: offers.iter().map(|o| o.available).sum(),
            offers,
            prices,
            vintages,
            ratings,
            buyer_ratings: self
                .buyer_ratings
                .get(project_id)
                .cloned()
                .unwrap_or_default(),
            project,
        };
        self.put(project_id, entry);
    }

    fn put(&mut self, project_id: &str, entry: Entry) {
        let slot = match self.by_project.get(project_id) {
            Some(&slot) => {
                self.unindex(slot);
                slot
            }
            None => {
                // Projects never leave the catalogue (approval is final), so slots are never freed.
                let slot = self.slots.len() as u32;
                self.slots.push(None);
                self.facts.push(Facts::default());
                self.by_project.insert(project_id.to_owned(), slot);
                slot
            }
        };
        for term in &entry.terms {
            self.terms.entry(term.clone()).or_default().insert(slot);
        }
        for word in &entry.words {
            self.words.entry(word.clone()).or_default().insert(slot);
        }
        self.live.insert(slot);
        self.facts[slot as usize] = Facts {
            approved: approved_at(&entry.project).timestamp_micros(),
            available: entry.available,
            vintage_min: entry.vintages.first().copied().unwrap_or(i32::MAX),
            vintage_max: entry.vintages.last().copied().unwrap_or(i32::MIN),
            // The best rating as thousandths of its scale (1000 is its top grade).
            rating: crate::ratings::counted(&entry.project.agency_ratings, &entry.vintages)
                .into_iter()
                .filter_map(|r| r.score())
                .max(),
            stars: entry.buyer_ratings.thousandths(),
            tiebreak: tiebreak_of(&entry.project.id),
            price: match entry.prices.as_slice() {
                [(currency, min, max, _, _)] => {
                    let code = currency.as_bytes();
                    Some(([code[0], code[1], code[2]], *min, *max))
                }
                _ => None,
            },
        };
        self.slots[slot as usize] = Some(entry);
    }

    fn unindex(&mut self, slot: u32) {
        let Some(entry) = self.slots[slot as usize].take() else {
            return;
        };
        for term in &entry.terms {
            if let Some(bitmap) = self.terms.get_mut(term) {
                bitmap.remove(slot);
                if bitmap.is_empty() {
                    self.terms.remove(term);
                }
            }
        }
        for word in &entry.words {
            if let Some(bitmap) = self.words.get_mut(word) {
                bitmap.remove(slot);
                if bitmap.is_empty() {
                    self.words.remove(word);
                }
            }
        }
        self.live.remove(slot);
    }

    fn any_of(&self, field: Field, values: &[String]) -> RoaringBitmap {
        let mut union = RoaringBitmap::new();
        for value in values {
            if let Some(bitmap) = self.terms.get(&(field, value.clone())) {
                union |= bitmap;
            }
        }
        union
    }

    fn word_matches(&self, word: &str) -> RoaringBitmap {
        if word.chars().count() < 2 {
            return self.words.get(word).cloned().unwrap_or_default();
        }
        let mut union = RoaringBitmap::new();
        for (w, bitmap) in self.words.range(word.to_owned()..) {
            if !w.starts_with(word) {
                break;
            }
            union |= bitmap;
        }
        union
    }

    /// The slots that pass every filter held in bitmaps.
    fn candidates(&self, search: &Search) -> RoaringBitmap {
        let mut set = self.live.clone();
        let narrow = |set: &mut RoaringBitmap, field: Field, values: Vec<String>| {
            if !values.is_empty() {
                *set &= self.any_of(field, &values);
            }
        };
        narrow(
            &mut set,
            Field::Standard,
            search
                .standards
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        );
        narrow(&mut set, Field::Country, search.countries.clone());
        narrow(&mut set, Field::Category, search.categories.clone());
        narrow(&mut set, Field::Type, search.project_types.clone());
        narrow(&mut set, Field::Protocol, search.protocols.clone());
        narrow(
            &mut set,
            Field::Mechanism,
            search.mechanisms.iter().map(|m| snake(*m)).collect(),
        );
        for label in &search.labels {
            narrow(&mut set, Field::Label, vec![snake(*label)]);
        }
        for sdg in &search.sdgs {
            narrow(&mut set, Field::Sdg, vec![sdg.to_string()]);
        }
        if let Some(agency) = &search.rating_agency {
            narrow(&mut set, Field::Agency, vec![agency.clone()]);
        }
        for word in &search.text {
            if set.is_empty() {
                break;
            }
            set &= self.word_matches(word);
        }
        set
    }

    /// The lowest and highest price of a slot's offers in `currency`, in minor units.
    fn prices_in(&self, slot: u32, currency: &str) -> Option<(i64, i64)> {
        let facts = &self.facts[slot as usize];
        if let Some((code, min, max)) = facts.price {
            return (code == currency.as_bytes()).then_some((min, max));
        }
        let entry = self.slots[slot as usize].as_ref()?;
        entry
            .prices
            .iter()
            .find(|p| p.0 == currency)
            .map(|p| (p.1, p.2))
    }

    /// The sort key of a slot; `None` when it has none (it sorts last either way).
    fn key(&self, slot: u32, search: &Search, currency: &str) -> Option<i64> {
        let facts = &self.facts[slot as usize];
        let has_vintage = facts.vintage_min <= facts.vintage_max;
        let value = match search.sort {
            Sort::Approved => Some(facts.approved),
            Sort::Available => Some(facts.available as i64),
            Sort::Rating => facts.rating,
            Sort::Stars => facts.stars,
            Sort::Vintage if !has_vintage => None,
            Sort::Vintage if search.descending => Some(i64::from(facts.vintage_max)),
            Sort::Vintage => Some(i64::from(facts.vintage_min)),
            Sort::Price => self
                .prices_in(slot, currency)
                .map(|(min, max)| if search.descending { max } else { min }),
        };
        value.map(|v| if search.descending { -v } else { v })
    }

    fn passes(&self, slot: u32, search: &Search, currency: &str, min_rank: Option<usize>) -> bool {
        let facts = &self.facts[slot as usize];
        if let Some(min) = search.min_available
            && facts.available < min
        {
            return false;
        }
        if search.vintage_from.is_some() || search.vintage_to.is_some() {
            let from = search.vintage_from.unwrap_or(i32::MIN);
            let to = search.vintage_to.unwrap_or(i32::MAX);
            let none_on_sale = facts.vintage_min > facts.vintage_max;
            if none_on_sale || facts.vintage_min > to || facts.vintage_max < from {
                return false;
            }
            // The range holds neither end: look at the years between.
            let holds_an_end = (from..=to).contains(&facts.vintage_min)
                || (from..=to).contains(&facts.vintage_max);
            if !holds_an_end {
                let Some(entry) = self.slots[slot as usize].as_ref() else {
                    return false;
                };
                if !entry.vintages.iter().any(|v| (from..=to).contains(v)) {
                    return false;
                }
            }
        }
        if search.min_price.is_some() || search.max_price.is_some() || search.currency.is_some() {
            let Some((low, high)) = self.prices_in(slot, currency) else {
                return false;
            };
            let min = search.min_price.map_or(i64::MIN, |m| m.minor_units());
            let max = search.max_price.map_or(i64::MAX, |m| m.minor_units());
            if high < min || low > max {
                return false;
            }
            // Some offer in the currency lies within the range: either end of the span does, or
            // one of the offers between.
            if !(min..=max).contains(&low) && !(min..=max).contains(&high) {
                let Some(entry) = self.slots[slot as usize].as_ref() else {
                    return false;
                };
                let inside = entry.offers.iter().any(|o| {
                    o.unit_price.currency() == currency
                        && (min..=max).contains(&o.unit_price.minor_units())
                });
                if !inside {
                    return false;
                }
            }
        }
        if let (Some(agency), Some(rank)) = (&search.rating_agency, min_rank) {
            let Some(entry) = self.slots[slot as usize].as_ref() else {
                return false;
            };
            if !entry.ratings.iter().any(|(a, r)| a == agency && *r <= rank) {
                return false;
            }
        }
        true
    }

    fn id_of(&self, slot: u32) -> &str {
        self.slots[slot as usize]
            .as_ref()
            .map(|e| e.project.id.as_str())
            .unwrap_or_default()
    }

    /// Runs a search over the index.
    pub fn search(&self, search: &Search) -> Found {
        let currency = search.currency.unwrap_or("USD");
        let min_rank = match (&search.rating_agency, &search.min_rating) {
            (Some(agency), Some(grade)) => crate::ratings::rank_of(agency, grade),
            _ => None,
        };
        // (sort key, tiebreak, slot): ids are compared only when both are equal.
        let mut matched: Vec<(i64, u64, u32)> = Vec::new();
        for slot in &self.candidates(search) {
            if self.passes(slot, search, currency, min_rank) {
                let key = self.key(slot, search, currency).unwrap_or(i64::MAX);
                matched.push((key, self.facts[slot as usize].tiebreak, slot));
            }
        }
        let total = matched.len() as u64;
        let facets = search.facets.then(|| self.facets(&matched));
        if let Some(after) = &search.after {
            matched.retain(|&(key, tiebreak, slot)| {
                (key, tiebreak)
                    .cmp(&(after.key, after.tiebreak))
                    .then_with(|| self.id_of(slot).cmp(after.id.as_str()))
                    == std::cmp::Ordering::Greater
            });
        }
        let order = |a: &(i64, u64, u32), b: &(i64, u64, u32)| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| self.id_of(a.2).cmp(self.id_of(b.2)))
        };
        let limit = search.limit.max(1);
        let want = limit + 1;
        if matched.len() > want {
            matched.select_nth_unstable_by(want - 1, order);
            matched.truncate(want);
        }
        matched.sort_unstable_by(order);
        let next = (matched.len() > limit).then(|| {
            let (key, tiebreak, slot) = matched[limit - 1];
            Position {
                sort: search.sort,
                descending: search.descending,
                key,
                tiebreak,
                currency: (search.sort == Sort::Price).then(|| currency.to_owned()),
                id: self.id_of(slot).to_owned(),
            }
        });
        matched.truncate(limit);
        let items = matched
            .into_iter()
            .filter_map(|(_, _, slot)| self.slots[slot as usize].as_ref())
            .map(Self::item)
            .collect();
        Found {
            items,
            next,
            total,
            facets,
        }
    }

    fn facets(&self, matched: &[(i64, u64, u32)]) -> Facets {
        let mut slots: Vec<u32> = matched.iter().map(|m| m.2).collect();
        slots.sort_unstable();
        let result = RoaringBitmap::from_sorted_iter(slots).unwrap_or_default();
        let mut facets = Facets::default();
        for ((field, value), bitmap) in &self.terms {
            let counts = match field {
                Field::Category => &mut facets.category,
                Field::Country => &mut facets.country,
                Field::Standard => &mut facets.standard,
                Field::Mechanism => &mut facets.mechanism,
                _ => continue,
            };
            let n = bitmap.intersection_len(&result);
            if n > 0 {
                counts.insert(value.clone(), n);
            }
        }
        facets
    }

    fn item(entry: &Entry) -> CatalogueItem {
        CatalogueItem {
            id: entry.project.id.clone(),
            fields: entry.project.fields.clone(),
            prices: entry
                .prices
                .iter()
                .map(|p| PriceRange { min: p.3, max: p.4 })
                .collect(),
            available: entry.available,
            vintages: entry.vintages.clone(),
            offers: entry.offers.clone(),
            // The ratings in force (the project shows every one); who recorded a rating is for
            // the platform's staff, not for the public.
            agency_ratings: crate::ratings::current(&entry.project.agency_ratings)
                .map(|r| AgencyRating {
                    recorded_by: String::new(),
                    ..r.clone()
                })
                .collect(),
            buyer_ratings: entry.buyer_ratings.summary(),
            approved_at: approved_at(&entry.project),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keeping the index current

/// The catalogue of one process: its index and how it follows the feed.
pub struct Catalogue {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    every: Duration,
    index: RwLock<SearchIndex>,
    follow: tokio::sync::Mutex<Follow>,
    loaded: AtomicBool,
    /// When the last refresh ended, in nanoseconds since `born`: a search within the interval
    /// reads the index without waiting for the refresh lock.
    refreshed: AtomicU64,
    born: Instant,
}

struct Follow {
    /// Where the next refresh starts reading (before the look-back).
    since: Option<DateTime<Utc>>,
}

impl Catalogue {
    /// A catalogue over the table, refreshed at most once per `every` (zero: before each search).
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, every: Duration) -> Self {
        Catalogue {
            table,
            clock,
            every,
            index: RwLock::new(SearchIndex::default()),
            follow: tokio::sync::Mutex::new(Follow { since: None }),
            loaded: AtomicBool::new(false),
            refreshed: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    fn fresh(&self) -> bool {
        let since = self.born.elapsed().as_nanos() as u64;
        self.loaded.load(Ordering::Acquire)
            && since.saturating_sub(self.refreshed.load(Ordering::Acquire))
                < self.every.as_nanos() as u64
    }

    /// Brings the index up to date when the refresh interval has passed (or it was never loaded).
    pub async fn refresh(&self) -> Result<(), TableError> {
        if self.fresh() {
            return Ok(());
        }
        let mut follow = self.follow.lock().await;
        if self.fresh() {
            return Ok(());
        }
        let started = self.clock.now();
        let from = follow.since.map(|since| since - LOOK_BACK);
        let mut found = Vec::new();
        for shard in 0..keys::CATALOGUE_SHARDS {
            let mut query = Query::partition(TableIndex::Gsi2, keys::catalogue_feed(shard));
            if let Some(from) = from {
                query = query.sort(SortKey::AtLeast(keys::sortable_time(from)));
            }
            found.extend(items::query_all(self.table.as_ref(), &query).await?);
        }
        {
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            index.apply_all(found)?;
        }
        follow.since = Some(started);
        self.refreshed
            .store(self.born.elapsed().as_nanos() as u64, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Searches the catalogue as it stands after a refresh that is due.
    pub async fn search(&self, search: &Search) -> Result<Found, TableError> {
        if let Err(error) = self.refresh().await {
            // A loaded index keeps answering while the table is throttled or down; the next
            // request past the interval tries again.
            if !self.loaded.load(Ordering::Acquire) {
                return Err(error);
            }
            tracing::warn!(%error, "catalogue: refresh failed; searching the index as it stands");
            self.refreshed
                .store(self.born.elapsed().as_nanos() as u64, Ordering::Release);
        }
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        Ok(index.search(search))
    }

    /// How many projects the index holds.
    pub fn len(&self) -> usize {
        self.index.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projects::IssuanceType;
    use chrono::TimeZone;
    use serde_json::json;

    fn project(id: &str) -> Item {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let project = Project {
            id: id.into(),
            owner: "ORG#org_a".into(),
            fields: ProjectFields {
                name: format!("Project {id}"),
                description: "Cookstoves in Kenya".into(),
                category: "energy-efficiency".into(),
                project_type: "cookstoves".into(),
                protocol: None,
                standard: Standard::GoldStandard,
                mechanism: Mechanism::Avoidance,
                issuance_type: IssuanceType::ExPost,
                country: "KE".into(),
                location: None,
                sdgs: vec![],
                labels: vec![],
                permanence_years: None,
                registry_project_id: Some("GS1234".into()),
                registry_url: None,
            },
            status: Status::Approved,
            reviewer: None,
            version: 1,
            created_by: "user:a".into(),
            created_at: at,
            updated_at: at,
            updated_by: None,
            agency_ratings: vec![],
            history_seq: 1,
            history_hash: String::new(),
            approved_at: Some(at),
        };
        items::with_key(&keys::project(id), &project).unwrap()
    }

    fn listing(
        id: &str,
        project: &str,
        price: &str,
        year: i32,
        revision: u64,
        status: ListingStatus,
    ) -> Item {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let listing = Listing {
            id: id.into(),
            project_id: project.into(),
            issuance_id: format!("iss_{id}"),
            seller: "ORG#org_a".into(),
            standard: Standard::GoldStandard,
            vintage: Vintage::Year(year),
            quantity: 10,
            available: 10,
            unit_price: Money::parse(price, "USD").unwrap(),
            status,
            version: 1,
            revision,
            created_by: "user:a".into(),
            created_at: at,
            updated_at: at,
        };
        items::with_key(&keys::listing(id), &listing).unwrap()
    }

    fn search(edit: impl FnOnce(&mut Search)) -> Search {
        let mut s = Search {
            limit: 20,
            ..Default::default()
        };
        edit(&mut s);
        s
    }

    fn price(amount: &str) -> Option<Money> {
        Some(Money::parse(amount, "USD").unwrap())
    }

    #[test]
    fn a_price_range_needs_an_offer_inside_it_not_only_a_span_around_it() {
        let mut index = SearchIndex::default();
        index
            .apply_all(vec![
                project("p1"),
                listing("l1", "p1", "5", 2020, 1, ListingStatus::Active),
                listing("l2", "p1", "50", 2021, 1, ListingStatus::Active),
            ])
            .unwrap();
        let between = index.search(&search(|s| {
            s.min_price = price("10");
            s.max_price = price("20");
        }));
        assert_eq!(between.total, 0);
        let cheap = index.search(&search(|s| s.max_price = price("6")));
        assert_eq!(cheap.total, 1);
        let inside = index.search(&search(|s| {
            s.min_price = price("40");
            s.max_price = price("60");
        }));
        assert_eq!(inside.total, 1);
        // A vintage between the two offered ones matches nothing; a project with nothing on sale
        // matches no vintage, however wide the range.
        index.apply_all(vec![project("p2")]).unwrap();
        let mid = index.search(&search(|s| {
            s.vintage_from = Some(2022);
            s.vintage_to = Some(2030);
        }));
        assert_eq!(mid.total, 0);
        let wide = index.search(&search(|s| s.vintage_to = Some(i32::MAX)));
        assert_eq!(wide.total, 1, "only p1 offers a vintage");
        assert!(index.search(&search(|s| s.limit = 0)).items.len() <= 1);
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one_and_a_close_is_final() {
        let mut index = SearchIndex::default();
        index
            .apply_all(vec![
                project("p1"),
                listing("l1", "p1", "9", 2020, 3, ListingStatus::Active),
            ])
            .unwrap();
        // A state written before (a lower revision) arrives late: ignored.
        index
            .apply_all(vec![listing(
                "l1",
                "p1",
                "7",
                2020,
                2,
                ListingStatus::Active,
            )])
            .unwrap();
        let found = index.search(&search(|_| {}));
        assert_eq!(found.items[0].offers[0].unit_price, price("9").unwrap());
        // Closed, then a stale active copy: stays closed, and only its id is kept.
        index
            .apply_all(vec![
                listing("l1", "p1", "9", 2020, 5, ListingStatus::Closed),
                listing("l1", "p1", "9", 2020, 4, ListingStatus::Active),
            ])
            .unwrap();
        let found = index.search(&search(|_| {}));
        assert!(found.items[0].offers.is_empty());
        assert!(index.listings.is_empty());
    }

    #[test]
    fn an_unreadable_item_is_left_out_and_the_rest_applies() {
        let mut index = SearchIndex::default();
        let mut broken = listing("l9", "p1", "9", 2020, 1, ListingStatus::Active);
        broken.insert(
            "unitPrice".into(),
            json!({"amount": "x", "currency": "USD"}),
        );
        index
            .apply_all(vec![
                project("p1"),
                broken,
                listing("l1", "p1", "8", 2020, 1, ListingStatus::Active),
            ])
            .unwrap();
        let found = index.search(&search(|s| s.text = vec!["cookstoves".into()]));
        assert_eq!(found.items[0].offers.len(), 1);
    }

    #[test]
    fn words_split_registry_ids_into_their_parts() {
        assert_eq!(words("VCS1340 Bale"), ["1340", "bale", "vcs", "vcs1340"]);
    }
}
