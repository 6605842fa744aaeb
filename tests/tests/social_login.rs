//! Social login through the local runtime against a real OpenID Provider (panva/oidc-provider from
//! npm, started by the test command on loopback): authorization code with PKCE, `state` and
//! `nonce`, ID-token verification, account creation and linking by verified email.

use amanar_journeys::{start_with, vars};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

fn issuer() -> String {
    std::env::var("AMANAR_TEST_OIDC_ISSUER").unwrap_or_else(|_| {
        panic!("AMANAR_TEST_OIDC_ISSUER is not set: run the tests with ./infra/test.sh, which starts the OpenID Provider")
    })
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{}{location}", base.trim_end_matches('/'))
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Plays the browser: start at the platform, log in and consent at the provider (its development
/// screens accept any login). Returns the browser, which holds the login's cookie, and the
/// platform callback URL the provider redirects to.
async fn browse_to_callback(platform: &str, login: &str) -> (reqwest::Client, String) {
    let browser = new_browser();
    let started = browser
        .get(format!("{platform}/v1/auth/social/google/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 302);
    let url = location(&started);
    let authorize = reqwest::Url::parse(&url).unwrap();
    let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params.contains_key("state") && params.contains_key("nonce"));
    let cookie = started.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("amanar_social=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let callback = browse(&browser, url, platform, login).await;
    (browser, callback)
}

/// A whole social login in one browser: the platform's answer at the callback.
async fn social_login(platform: &str, login: &str) -> reqwest::Response {
    let (browser, callback) = browse_to_callback(platform, login).await;
    browser.get(callback).send().await.unwrap()
}

/// From an authorization URL through the provider's screens to the redirect back to `back_to`.
async fn browse(browser: &reqwest::Client, mut url: String, back_to: &str, login: &str) -> String {
    let platform = back_to;
    let provider = issuer();
    for _ in 0..12 {
        if url.starts_with(platform) {
            return url;
        }
        let page = browser.get(&url).send().await.unwrap();
        if page.status().is_redirection() {
            url = absolute(&provider, &location(&page));
            continue;
        }
        // An interaction page: the login form first, then the consent form.
        let html = page.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a form in {html}"))
            .to_owned();
        let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
            vec![
                ("prompt", "login"),
                ("login", login),
                ("password", "anything"),
            ]
        } else {
            vec![("prompt", "consent")]
        };
        let submitted = browser
            .post(absolute(&provider, &action))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            submitted.status().is_redirection(),
            "{}",
            submitted.status()
        );
        url = absolute(&provider, &location(&submitted));
    }
    panic!("the provider never redirected back to the platform (last at {url})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openid_login_creates_then_reuses_an_account_and_links_verified_emails() {
    let provider = issuer();
    let (running, _dir) = start_with(&[
        (&vars::social("google", "ISSUER"), &provider),
        (&vars::social("google", "CLIENT_ID"), "amanar-test"),
        (
            &vars::social("google", "CLIENT_SECRET"),
            "amanar-test-secret",
        ),
    ])
    .await;
    let platform = format!("http://{}", running.addr);
    let client = reqwest::Client::new();

    // The callback URL alone, replayed in another browser, is refused (login CSRF).
    let (browser, callback) = browse_to_callback(&platform, "grace@example.com").await;
    let elsewhere = client.get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), 400);
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let tokens: Value = answer.json().await.unwrap();
    let access = tokens["accessToken"].as_str().unwrap();
    let me: Value = client
        .get(format!("{platform}/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "grace@example.com");
    assert_eq!(me["accountType"], "individual");
    let first_user = me["userId"].as_str().unwrap().to_owned();

    // The state works once.
    let replay = browser.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    let problem: Value = replay.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://docs.amanarcarbon.com/problems/invalid-state"
    );

    // The same provider identity comes back to the same account.
    let again: Value = social_login(&platform, "grace@example.com")
        .await
        .json()
        .await
        .unwrap();
    let me: Value = client
        .get(format!("{platform}/v1/me"))
        .bearer_auth(again["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userId"], first_user.as_str());

    // An account registered with a password is linked by its verified email.
    let registered: Value = client
        .post(format!("{platform}/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": "Correct horse 7 battery", "name": "Ada", "accountType": "business"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let linked: Value = social_login(&platform, "ada@example.com")
        .await
        .json()
        .await
        .unwrap();
    let me: Value = client
        .get(format!("{platform}/v1/me"))
        .bearer_auth(linked["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userId"], registered["userId"]);
    assert_eq!(me["accountType"], "business");

    // Someone who registered an address without confirming it loses it to the verified owner:
    // the old password stops working when the provider vouches for the address.
    let squatter = client
        .post(format!("{platform}/v1/auth/register"))
        .json(&json!({"email": "lin@example.com", "password": "Squatter pass 99", "name": "Eve", "accountType": "individual"}))
        .send()
        .await
        .unwrap();
    assert_eq!(squatter.status(), 201);
    let owner = social_login(&platform, "lin@example.com").await;
    assert_eq!(owner.status(), 200);
    let old_password = client
        .post(format!("{platform}/v1/auth/login"))
        .json(&json!({"email": "lin@example.com", "password": "Squatter pass 99"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old_password.status(), 401);

    // No verified email, no account.
    let refused = social_login(&platform, "unverified@example.com").await;
    assert_eq!(refused.status(), 403);

    // Unknown providers and forged states are refused.
    let unknown = client
        .get(format!("{platform}/v1/auth/social/myspace/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let forged = client
        .get(format!(
            "{platform}/v1/auth/social/callback?code=abc&state=forged"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let denied = client
        .get(format!(
            "{platform}/v1/auth/social/callback?error=access_denied"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    running.shutdown().await;
}

/// The AWS face's hosted-UI mode (the user pool federates the provider): the same flow against
/// the provider's `/oauth2/authorize` and `/oauth2/token`, as a public client, keeping the tokens
/// the token endpoint issues. The provider stands in for the Cognito hosted UI, which has no
/// emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_ui_mode_sends_identity_provider_and_exchanges_the_code_with_pkce() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use amanar_accounts::Accounts;
    use amanar_accounts::social::{Mode, Social};
    use amanar_core::{SystemClock, Table};
    use amanar_local_idp::LocalIdentity;

    let dir = tempfile::tempdir().unwrap();
    let store = amanar_embedded::EmbeddedStore::open(dir.path()).unwrap();
    let table: Arc<dyn Table> = Arc::new(store.table.clone());
    let clock = Arc::new(SystemClock);
    let idp = LocalIdentity::open(
        table.clone(),
        clock.clone(),
        "http://127.0.0.1:3000",
        b"test code key",
    )
    .await
    .unwrap();
    let accounts = Arc::new(Accounts::new(Arc::new(idp), table.clone(), clock.clone()));
    let callback = "http://127.0.0.1:1/v1/auth/social/callback";
    let social = Social::new(
        HashMap::from([(
            "google".to_owned(),
            Mode::HostedUi {
                base_url: issuer(),
                client_id: "amanar-hosted-ui".into(),
                client_secret: Some("amanar-hosted-ui-secret".into()),
                identity_provider: "Google".into(),
            },
        )]),
        callback,
        accounts,
        table,
        clock,
    );
    let (url, browser_secret) = social.start("google").await.unwrap();
    assert!(
        url.starts_with(&format!("{}/oauth2/authorize?", issuer())),
        "{url}"
    );
    let params: HashMap<_, _> = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["identity_provider"], "Google");
    assert_eq!(params["client_id"], "amanar-hosted-ui");
    assert_eq!(params["redirect_uri"], callback);

    let back = browse(
        &new_browser(),
        url,
        "http://127.0.0.1:1/",
        "lin@example.com",
    )
    .await;
    let params: HashMap<_, _> = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(matches!(
        social
            .callback(&params["code"], &params["state"], Some("another browser"))
            .await,
        Err(amanar_accounts::social::SocialError::BadState)
    ));
    let tokens = social
        .callback(&params["code"], &params["state"], Some(&browser_secret))
        .await
        .unwrap()
        .tokens()
        .expect("no MFA challenge in the hosted-UI mode");
    assert!(!tokens.access_token.is_empty());
    assert!(!tokens.refresh_token.is_empty());
    assert!(tokens.expires_in > 0);
    assert!(matches!(
        social
            .callback(&params["code"], &params["state"], Some(&browser_secret))
            .await,
        Err(amanar_accounts::social::SocialError::BadState)
    ));
}
