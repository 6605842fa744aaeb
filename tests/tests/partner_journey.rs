//! The whole partner path through the local runtime: register -> verify -> MFA -> organisation ->
//! API key -> calls with `X-Api-Key` under rate limits -> revocation, with every step audited.

use amanar_accounts::totp;
use amanar_journeys::{start_with, vars};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct horse 7 battery";

fn code_in(mail: &Value) -> String {
    let text = mail["items"][0]["text"].as_str().unwrap();
    amanar_testkit::mailed_code(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_mfa_organisation_api_key_rate_limit_and_revocation() {
    let (running, _dir) = start_with(&[(vars::RATE_LIMIT_KEY, "5")]).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // Register and verify an enterprise account.
    let email = "integrations@bigcorp.example";
    let registered = post("/v1/auth/register", None, json!({"email": email, "password": PASSWORD, "name": "BigCorp IT", "accountType": "enterprise"})).await.unwrap();
    assert_eq!(registered.status(), 201);
    let mail: Value = http
        .get(format!("{base}/_local/mailbox?to={email}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified = post(
        "/v1/auth/verify-email",
        None,
        json!({"email": email, "code": code_in(&mail)}),
    )
    .await
    .unwrap();
    assert_eq!(verified.status(), 200);
    let tokens: Value = post(
        "/v1/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = tokens["accessToken"].as_str().unwrap().to_owned();

    // Enterprise: MFA before any organisation action.
    let refused = post("/v1/orgs", Some(&access), json!({"name": "BigCorp"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let enrolment: Value = post(
        "/v1/me/mfa/totp",
        Some(&access),
        json!({"password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let step = totp::step_of(amanar_testkit::unix_now());
    let confirmed = post(
        "/v1/me/mfa/totp/verify",
        Some(&access),
        json!({"code": totp::code_at_step(&key, step), "password": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(confirmed.status(), 200);
    let challenge: Value = post(
        "/v1/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(challenge["challenge"], "totp");
    let tokens: Value = post(
        "/v1/auth/mfa",
        None,
        json!({"session": challenge["session"], "code": totp::code_at_step(&key, totp::step_of(amanar_testkit::unix_now()).max(step) + 1)}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = tokens["accessToken"].as_str().unwrap().to_owned();

    // Organisation and a scoped key, whose secret is shown once.
    let org: Value = post("/v1/orgs", Some(&access), json!({"name": "BigCorp"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["orgId"].as_str().unwrap().to_owned();
    let bad_scope = post(
        &format!("/v1/orgs/{org_id}/api-keys"),
        Some(&access),
        json!({"name": "ERP", "scopes": ["everything"]}),
    )
    .await
    .unwrap();
    assert_eq!(bad_scope.status(), 422);
    let created = post(
        &format!("/v1/orgs/{org_id}/api-keys"),
        Some(&access),
        json!({"name": "ERP sync", "scopes": ["orgs:read", "members:read"]}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    // Bearer-authenticated responses carry the per-user limits.
    assert_eq!(created.headers()["ratelimit-limit"], "600");
    let created: Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["keyId"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    let listed: Value = http
        .get(format!("{base}/v1/orgs/{org_id}/api-keys"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed"
    );

    // The key reads its own organisation within its scopes, and nothing else.
    let with_key = |path: String| {
        http.get(format!("{base}{path}"))
            .header("x-api-key", &secret)
            .send()
    };
    let first = with_key(format!("/v1/orgs/{org_id}")).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "5");
    assert_eq!(first.headers()["ratelimit-remaining"], "4");
    assert_eq!(
        with_key(format!("/v1/orgs/{org_id}/members"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_key(format!("/v1/orgs/{org_id}/audit-log"))
            .await
            .unwrap()
            .status(),
        403,
        "no audit:read scope"
    );
    assert_eq!(
        with_key("/v1/orgs/org_someone_else".into())
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        with_key("/v1/me".into()).await.unwrap().status(),
        401,
        "keys are not users"
    );
    let limited = with_key(format!("/v1/orgs/{org_id}")).await.unwrap();
    assert_eq!(limited.status(), 429, "the sixth request in a minute");
    let retry: i64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0..=60).contains(&retry));
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    let wrong = http
        .get(format!("{base}/v1/orgs/{org_id}"))
        .header("x-api-key", "amk_not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // Last use is recorded; revocation stops the key at once.
    let listed: Value = http
        .get(format!("{base}/v1/orgs/{org_id}/api-keys"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["items"][0]["lastUsedAt"].is_string());
    let revoked = http
        .delete(format!("{base}/v1/orgs/{org_id}/api-keys/{key_id}"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        with_key(format!("/v1/orgs/{org_id}"))
            .await
            .unwrap()
            .status(),
        401
    );

    // Everything above is in the audit logs, without a secret in sight.
    let mine: Value = http
        .get(format!("{base}/v1/me/audit-log?limit=100"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.registered",
        "user.email_verified",
        "auth.login",
        "mfa.enabled",
        "auth.mfa_challenged",
        "org.created",
        "apikey.created",
        "apikey.revoked",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let entries = mine["items"].as_array().unwrap();
    let mut ascending: Vec<amanar_accounts::audit::AuditEntry> = entries
        .iter()
        .rev()
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect();
    assert!(
        amanar_accounts::audit::chain_is_intact(&ascending),
        "the hash chain holds"
    );
    ascending[1].detail = Some("tampered".into());
    assert!(
        !amanar_accounts::audit::chain_is_intact(&ascending),
        "an edit breaks the chain"
    );
    assert!(!mine.to_string().contains(&secret));
    running.shutdown().await;
}
