//! Rate limits per user and per API key, in fixed one-minute windows.
//!
//! The first request of a window starts its counter, each request adds one, and a request over the
//! limit is a 429 with `Retry-After`. Every authenticated response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the window resets). Anonymous calls
//! to `/v1/auth/*` (logins, codes, resets) are limited per client address; all anonymous traffic
//! is also throttled upstream in AWS (API Gateway's route throttling in template.yaml).
//!
//! Where the counters live depends on who shares them: Lambda instances share nothing, so in AWS
//! they are table items ([`TableCounter`], with a TTL) that every instance moves. The local runtime
//! is one process, so there a counter in memory ([`MemoryCounter`]) counts the same requests
//! without a durable write per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use amanar_core::Clock;
use amanar_core::table::{EXPIRES_AT, Table, TableError, Update, WriteOp};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{ApiKeyCaller, Caller};
use crate::problem::ApiError;

pub const WINDOW_SECS: i64 = 60;

/// The paths limited per client address: this one and everything under it.
pub const PER_ADDRESS_PATHS: &str = "/v1/auth";

/// The address a request came from, as the edge saw it: API Gateway's `sourceIp` in a Lambda
/// (the entry point inserts it), the TCP peer in the local runtime (axum's `ConnectInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

fn client_addr(request: &Request) -> Option<std::net::IpAddr> {
    let extensions = request.extensions();
    extensions.get::<ClientAddr>().map(|a| a.0).or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// Counts requests per subject and window.
#[async_trait::async_trait]
pub trait WindowCounter: Send + Sync {
    /// Adds one request to `subject`'s window starting at `window` (epoch seconds) and returns
    /// how many it holds now.
    async fn hit(&self, subject: &str, window: i64) -> Result<i64, TableError>;
}

/// Counters as table items shared by every process (Lambda).
pub struct TableCounter(pub Arc<dyn Table>);

#[async_trait::async_trait]
impl WindowCounter for TableCounter {
    async fn hit(&self, subject: &str, window: i64) -> Result<i64, TableError> {
        let key = amanar_core::keys::rate_window(subject, window);
        let count = Update::new()
            .add("count", 1)
            .set(EXPIRES_AT, window + 2 * WINDOW_SECS);
        self.0
            .write(vec![WriteOp::update(key.clone(), count)])
            .await?;
        Ok(self
            .0
            .get(&key)
            .await?
            .and_then(|i| i.get("count").and_then(|c| c.as_i64()))
            .unwrap_or(1))
    }
}

/// Counters in this process's memory: exact for a single process (the local runtime), and free of
/// a durable write per request. One entry per subject, reset when its window passes.
/// Subjects a [`MemoryCounter`] holds before it drops past windows.
const MEMORY_SUBJECTS: usize = 10_000;
/// The subject every newcomer counts under while a [`MemoryCounter`] is full.
const OVERFLOW: &str = "overflow";

#[derive(Default)]
pub struct MemoryCounter(Mutex<HashMap<String, (i64, i64)>>);

#[async_trait::async_trait]
impl WindowCounter for MemoryCounter {
    async fn hit(&self, subject: &str, window: i64) -> Result<i64, TableError> {
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let subject = if windows.len() < MEMORY_SUBJECTS || windows.contains_key(subject) {
            subject
        } else {
            // Per-address subjects are anyone's to make: past windows go, and if the current one
            // alone fills the map, every newcomer shares one overflow count (so a flood of new
            // subjects is limited together, and the map never grows past the bound).
            windows.retain(|_, (start, _)| *start == window);
            if windows.len() < MEMORY_SUBJECTS {
                subject
            } else {
                OVERFLOW
            }
        };
        let entry = windows.entry(subject.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }
}

#[derive(Clone)]
pub struct RateLimits {
    pub counter: Arc<dyn WindowCounter>,
    pub clock: Arc<dyn Clock>,
    /// Requests per minute for one user.
    pub per_user: u32,
    /// Requests per minute for one API key.
    pub per_key: u32,
    /// Anonymous `/v1/auth/*` requests per minute from one client address.
    pub per_address: u32,
}

fn headers(response: &mut Response, limit: u32, remaining: u32, reset: i64) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset.max(0)));
}

/// One window's count for a subject, and what the response says about it.
struct Counted {
    limit: u32,
    used: i64,
}

impl Counted {
    fn over(&self) -> bool {
        self.used > i64::from(self.limit)
    }

    fn remaining(&self) -> u32 {
        (i64::from(self.limit) - self.used).max(0) as u32
    }
}

/// Counts the request against its caller's window (user or key), and an `/v1/auth/*` request also
/// against its client address's, whoever the caller is (a token must not buy a login flood a
/// higher limit); refuses it when a window is full.
pub async fn middleware(
    State(limits): State<RateLimits>,
    request: Request,
    next: Next,
) -> Response {
    let extensions = request.extensions();
    let caller = if let Some(key) = extensions.get::<ApiKeyCaller>() {
        Some((crate::scope::key_subject(&key.key_id), limits.per_key))
    } else {
        extensions
            .get::<Caller>()
            .map(|caller| (crate::scope::user_subject(&caller.user_id), limits.per_user))
    };
    let address = is_auth_path(request.uri().path())
        .then(|| client_addr(&request))
        .flatten()
        .map(|addr| (address_subject(addr), limits.per_address));
    if caller.is_none() && address.is_none() {
        return next.run(request).await;
    }
    let now = limits.clock.now().timestamp();
    let window = now - now.rem_euclid(WINDOW_SECS);
    let reset = window + WINDOW_SECS - now;
    let mut shown = None;
    for (subject, limit) in [address, caller].into_iter().flatten() {
        let counted = match limits.counter.hit(&subject, window).await {
            Ok(used) => Counted { limit, used },
            Err(error) => return ApiError::from(error).into_response(),
        };
        if counted.over() {
            let mut response = ApiError::RateLimited {
                retry_after_secs: reset as u64,
            }
            .into_response();
            headers(&mut response, limit, 0, reset);
            return response;
        }
        // The headers describe the caller's own window when there is one (it comes last).
        shown = Some(counted);
    }
    let mut response = next.run(request).await;
    if let Some(counted) = shown {
        headers(&mut response, counted.limit, counted.remaining(), reset);
    }
    response
}

/// `/v1/auth` and everything under it, and nothing that merely starts with the same letters.
fn is_auth_path(path: &str) -> bool {
    path.strip_prefix(PER_ADDRESS_PATHS)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The subject an address counts under: an IPv4 address as itself (also when it arrives
/// IPv4-mapped), an IPv6 address by its /64, the smallest block one client is usually given.
fn address_subject(addr: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    match addr {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_memory_counter_counts_newcomers_together_and_never_grows_past_its_bound() {
        let counter = MemoryCounter::default();
        for n in 0..MEMORY_SUBJECTS {
            counter.hit(&format!("addr:{n}"), 60).await.unwrap();
        }
        assert_eq!(counter.hit("addr:new-1", 60).await.unwrap(), 1);
        assert_eq!(
            counter.hit("addr:new-2", 60).await.unwrap(),
            2,
            "shares the overflow"
        );
        assert_eq!(
            counter.hit("addr:7", 60).await.unwrap(),
            2,
            "a known subject keeps its own"
        );
        assert!(counter.0.lock().unwrap().len() <= MEMORY_SUBJECTS + 1);
        // The next window starts clean.
        assert_eq!(counter.hit("addr:new-1", 120).await.unwrap(), 1);
        assert!(counter.0.lock().unwrap().len() <= 2);
    }

    #[test]
    fn addresses_count_by_ipv4_or_ipv6_slash_64_and_auth_paths_match_exactly() {
        let subject = |a: &str| address_subject(a.parse().unwrap());
        assert_eq!(subject("203.0.113.7"), "addr:203.0.113.7");
        assert_eq!(subject("::ffff:203.0.113.7"), "addr:203.0.113.7");
        assert_eq!(
            subject("2001:db8:1:2:aaaa::1"),
            subject("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(subject("2001:db8:1:2::1"), subject("2001:db8:1:3::1"));
        assert!(is_auth_path("/v1/auth/login"));
        assert!(is_auth_path("/v1/auth"));
        assert!(!is_auth_path("/v1/authx/login"));
        assert!(!is_auth_path("/v1/me"));
    }

    #[tokio::test]
    async fn a_memory_counter_counts_per_subject_and_starts_again_each_window() {
        let counter = MemoryCounter::default();
        assert_eq!(counter.hit("user:a", 60).await.unwrap(), 1);
        assert_eq!(counter.hit("user:a", 60).await.unwrap(), 2);
        assert_eq!(counter.hit("user:b", 60).await.unwrap(), 1);
        assert_eq!(counter.hit("user:a", 120).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_table_counter_counts_in_items_that_expire_after_their_window() {
        let dir = tempfile::tempdir().unwrap();
        let table: Arc<dyn Table> = Arc::new(
            amanar_embedded::EmbeddedStore::open(dir.path())
                .unwrap()
                .table,
        );
        let counter = TableCounter(table.clone());
        assert_eq!(counter.hit("key:k", 60).await.unwrap(), 1);
        assert_eq!(counter.hit("key:k", 60).await.unwrap(), 2);
        assert_eq!(counter.hit("key:k", 120).await.unwrap(), 1);
        let item = table
            .get(&amanar_core::keys::rate_window("key:k", 60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item[EXPIRES_AT], serde_json::json!(180));
    }
}
