//! A login flood: 80 parallel sign-ins for unknown emails, the attack of the security review that
//! took the process to 1.35 GB (every argon2 hash holds 19 MiB, and Tokio's blocking pool allows
//! 512 at once). Hashing is capped at two per core, so the peak stays near that cap's memory. Its
//! own test binary, so no other test moves this process's peak.

#![cfg(target_os = "linux")]

use std::sync::Arc;

use amanar_accounts::identity::{IdentityError, IdentityProvider};
use amanar_core::{SystemClock, Table};
use amanar_local_idp::LocalIdentity;

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighty_parallel_logins_for_unknown_emails_stay_within_the_hashing_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = amanar_embedded::EmbeddedStore::open(dir.path()).unwrap();
    let table: Arc<dyn Table> = Arc::new(store.table.clone());
    let idp = Arc::new(
        LocalIdentity::open(table, Arc::new(SystemClock), "http://127.0.0.1:3000", b"k")
            .await
            .unwrap(),
    );
    let before = peak_rss_kib();
    let logins: Vec<_> = (0..80)
        .map(|n| {
            let idp = idp.clone();
            tokio::spawn(async move {
                idp.sign_in(&format!("nobody-{n}@example.com"), "Guessed password 1")
                    .await
            })
        })
        .collect();
    for login in logins {
        let answer = login.await.unwrap();
        assert!(
            matches!(
                answer,
                Err(IdentityError::BadCredentials | IdentityError::Unavailable(_))
            ),
            "{answer:?}"
        );
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let growth_mib = peak_rss_kib().saturating_sub(before) / 1024;
    // Two hashes per core at 19 MiB each, with room for the allocator (80 at once: 1.5 GiB).
    let bound = 2 * cores * 19 + 64;
    eprintln!("80 parallel logins: peak grew by {growth_mib} MiB on {cores} cores");
    assert!(
        growth_mib <= bound,
        "peak grew by {growth_mib} MiB (bound {bound} MiB for {cores} cores)"
    );
}
