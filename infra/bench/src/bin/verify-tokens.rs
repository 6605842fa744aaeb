//! Access-token verifications per second on one core, in-process: `verify-tokens [SECONDS]`.
//!
//! A local identity provider (on a temporary embedded table) issues a real ES256 access token; the
//! verifier built from its JWKS checks it over and over (signature, issuer, client, expiry, token
//! use). The baseline, measured in the same run, decodes the same token with signature checking
//! off: what the checks cost beyond parsing. Prints one JSON line.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amanar_accounts::identity::{IdentityProvider, NewIdentity};
use amanar_core::{SystemClock, Table};
use amanar_http::Verifier;
use amanar_local_idp::LocalIdentity;

fn rate(seconds: f64, mut work: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..100 {
            work();
        }
        done += 100;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("amanar-verify-bench-{}", std::process::id()));
    let store = amanar_embedded::EmbeddedStore::open(&dir).unwrap();
    let table: Arc<dyn Table> = Arc::new(store.table.clone());
    let idp = LocalIdentity::open(
        table,
        Arc::new(SystemClock),
        "http://127.0.0.1:3000",
        b"bench code key",
    )
    .await
    .unwrap();
    let new = NewIdentity {
        email: "bench@example.com".into(),
        password: "Correct horse 7 battery".into(),
        name: "Bench".into(),
        account_type: "individual".into(),
    };
    idp.create_confirmed(&new).await.unwrap();
    let login_started = Instant::now();
    let tokens = idp
        .sign_in(&new.email, &new.password)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    let login_ms = login_started.elapsed().as_secs_f64() * 1000.0;
    let issuer = idp.issuer();
    let verifier =
        Verifier::from_jwks(issuer.issuer, issuer.client_id, &idp.jwks().await.unwrap()).unwrap();
    assert!(verifier.verify(&tokens.access_token).is_ok());

    let token = tokens.access_token.clone();
    rate(0.5, || {
        black_box(verifier.verify(black_box(&token)).is_ok());
    });
    let baseline = rate(seconds, || {
        black_box(
            jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(black_box(&token))
                .is_ok(),
        );
    });
    let verifications = rate(seconds, || {
        black_box(verifier.verify(black_box(&token)).is_ok());
    });
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        serde_json::json!({
            "verifications_per_s_one_core": verifications.round(),
            "baseline_decode_without_signature_per_s": baseline.round(),
            "ratio_to_baseline": (verifications / baseline * 1000.0).round() / 1000.0,
            "argon2id_login_in_process_ms": (login_ms * 100.0).round() / 100.0,
        })
    );
}
