//! Accounts through the local runtime over HTTP: registration with the local mailbox, login,
//! profile, rotating refresh tokens, logout, lockout, password reset and admin-granted roles.

use amanar_journeys::{Platform, start, start_with, vars};
use amanar_local::Running;
use serde_json::{Value, json};

const PASSWORD: &str = "Correct horse 7 battery";

/// The first admin the configuration names.
const ADMIN: &[(&str, &str)] = &[
    (vars::ADMIN_EMAIL, "root@example.com"),
    (vars::ADMIN_PASSWORD, "Admin password 42"),
];

struct Api {
    base: String,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    fn new(running: &Running) -> Self {
        Self {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, None, Some(body)).await
    }

    /// The code in the newest mail to `to` whose subject contains `subject`.
    async fn code_from_mail(&self, to: &str, subject: &str) -> String {
        let mail = self
            .send("GET", &format!("/_local/mailbox?to={to}"), None, None)
            .await;
        assert_eq!(mail.status, 200, "{}", mail.body);
        let text = mail.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"].as_str().unwrap().contains(subject))
            .unwrap_or_else(|| panic!("a mail about {subject} to {to}: {}", mail.body))["text"]
            .as_str()
            .unwrap();
        amanar_testkit::mailed_code(text)
    }

    async fn register_and_verify(&self, email: &str) -> String {
        let registered = self
            .post(
                "/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace", "accountType": "business"}),
            )
            .await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        let code = self.code_from_mail(&email.to_lowercase(), "Verify").await;
        let verified = self
            .post(
                "/v1/auth/verify-email",
                json!({"email": email, "code": code}),
            )
            .await;
        assert_eq!(verified.status, 200, "{}", verified.body);
        registered.body["userId"].as_str().unwrap().to_owned()
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_verify_login_profile_refresh_and_logout() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);

    let registered = api
        .post(
            "/v1/auth/register",
            json!({"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada", "accountType": "business"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert_eq!(registered.body["status"], "pending_verification");
    let user_id = registered.body["userId"].as_str().unwrap().to_owned();

    // Emails compare case-insensitively, and the conflict says no more than that.
    let duplicate = api
        .post(
            "/v1/auth/register",
            json!({"email": "ada@EXAMPLE.com", "password": PASSWORD, "name": "Eve", "accountType": "individual"}),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body["type"],
        "https://docs.amanarcarbon.com/problems/email-taken"
    );

    let weak = api
        .post(
            "/v1/auth/register",
            json!({"email": "bob@example.com", "password": "password", "name": "Bob", "accountType": "individual"}),
        )
        .await;
    assert_eq!(
        (weak.status, weak.body["errors"][0]["field"].as_str()),
        (422, Some("password"))
    );

    // Not verified yet: no login.
    let early = api.login("ada@example.com", PASSWORD).await;
    assert_eq!(early.status, 403, "{}", early.body);
    assert_eq!(
        early.body["type"],
        "https://docs.amanarcarbon.com/problems/email-not-verified"
    );

    let wrong = api
        .post(
            "/v1/auth/verify-email",
            json!({"email": "ada@example.com", "code": "000000"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["errors"][0]["field"].as_str()),
        (422, Some("code"))
    );
    let resend = api
        .post("/v1/auth/resend-code", json!({"email": "ada@example.com"}))
        .await;
    // A code went out less than a minute ago, so none is sent, but the answer is the one every
    // address gets.
    assert_eq!(resend.status, 202);
    let unknown = api
        .post(
            "/v1/auth/resend-code",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(unknown.status, 202);
    let mailbox = api
        .send("GET", "/_local/mailbox?to=ada@example.com", None, None)
        .await;
    assert_eq!(
        mailbox.body["items"].as_array().unwrap().len(),
        1,
        "no second code within the cooldown"
    );

    let code = api.code_from_mail("ada@example.com", "Verify").await;
    let verified = api
        .post(
            "/v1/auth/verify-email",
            json!({"email": "ada@example.com", "code": code}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let again = api
        .post(
            "/v1/auth/verify-email",
            json!({"email": "ada@example.com", "code": code}),
        )
        .await;
    assert_eq!(again.status, 422, "a code works once");

    let login = api.login("ADA@example.com", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = login.body["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(login.body["expiresIn"], 900);

    // The token is an ES256 JWT whose key the JWKS publishes.
    let jwks = api.send("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.body["keys"][0]["kty"], "EC");
    assert_eq!(jwks.body["keys"][0]["crv"], "P-256");

    let me = api.send("GET", "/v1/me", Some(&access), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["userId"], user_id.as_str());
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(me.body["accountType"], "business");
    assert_eq!(me.body["preferences"]["units"], "metric");

    let patched = api
        .send(
            "PATCH",
            "/v1/me",
            Some(&access),
            Some(json!({"name": "Ada King", "preferences": {"units": "imperial", "currency": "GBP", "locale": "en-GB", "theme": "dark", "notifications": {"marketing": true}}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "Ada King");
    assert_eq!(patched.body["preferences"]["currency"], "GBP");
    assert_eq!(patched.body["preferences"]["notifications"]["email"], true);
    assert_eq!(
        patched.body["preferences"]["notifications"]["marketing"],
        true
    );
    let bad = api
        .send(
            "PATCH",
            "/v1/me",
            Some(&access),
            Some(json!({"preferences": {"currency": "XYZ"}})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["field"].as_str()),
        (422, Some("preferences.currency"))
    );
    let bad = api
        .send(
            "PATCH",
            "/v1/me",
            Some(&access),
            Some(json!({"preferences": {"theme": "neon"}})),
        )
        .await;
    assert_eq!(bad.status, 422);

    // Without a token, or with a tampered one: 401.
    assert_eq!(api.send("GET", "/v1/me", None, None).await.status, 401);
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    let refused = api.send("GET", "/v1/me", Some(&tampered), None).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Refresh rotates; a rotated token coming back revokes the session family.
    let rotated = api
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let next = rotated.body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(next, refresh);
    let reuse = api
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(reuse.status, 401);
    let after_reuse = api
        .post("/v1/auth/refresh", json!({"refreshToken": next}))
        .await;
    assert_eq!(after_reuse.status, 401, "reuse revoked the newer token too");

    // Logout revokes the refresh tokens of the caller.
    let login = api.login("ada@example.com", PASSWORD).await;
    let access = login.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = login.body["refreshToken"].as_str().unwrap().to_owned();
    let logout = api
        .send("POST", "/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(logout.status, 204);
    let revoked = api
        .post("/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(revoked.status, 401);
    assert_eq!(
        api.send("POST", "/v1/auth/logout", None, None).await.status,
        401
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_lock_the_account_and_a_password_reset_ends_every_session() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    api.register_and_verify("grace@example.com").await;
    let session = api.login("grace@example.com", PASSWORD).await;
    let old_refresh = session.body["refreshToken"].as_str().unwrap().to_owned();

    for _ in 0..5 {
        let failed = api.login("grace@example.com", "Wrong password 1").await;
        assert_eq!(failed.status, 401);
        assert_eq!(
            failed.body["type"],
            "https://docs.amanarcarbon.com/problems/invalid-credentials"
        );
    }
    let locked = api.login("grace@example.com", PASSWORD).await;
    assert_eq!(locked.status, 423, "{}", locked.body);
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // An unknown address locks the same way, so the lock reveals nothing.
    for _ in 0..5 {
        assert_eq!(api.login("nobody@example.com", PASSWORD).await.status, 401);
    }
    assert_eq!(api.login("nobody@example.com", PASSWORD).await.status, 423);

    let forgot = api
        .post(
            "/v1/auth/password/forgot",
            json!({"email": "grace@example.com"}),
        )
        .await;
    assert_eq!(forgot.status, 202);
    let unknown = api
        .post(
            "/v1/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        unknown.status, 202,
        "the same answer for an unknown address"
    );
    let code = api.code_from_mail("grace@example.com", "Reset").await;
    let wrong = api
        .post("/v1/auth/password/reset", json!({"email": "grace@example.com", "code": "000000", "newPassword": "Another horse 8 staple"}))
        .await;
    assert_eq!(wrong.status, 422);
    let reset = api
        .post("/v1/auth/password/reset", json!({"email": "grace@example.com", "code": code, "newPassword": "Another horse 8 staple"}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let again = api
        .post("/v1/auth/password/reset", json!({"email": "grace@example.com", "code": code, "newPassword": "Third horse 9 staple"}))
        .await;
    assert_eq!(again.status, 422, "a code works once");

    assert_eq!(
        api.post("/v1/auth/refresh", json!({"refreshToken": old_refresh}))
            .await
            .status,
        401
    );
    assert_eq!(api.login("grace@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        api.login("grace@example.com", "Another horse 8 staple")
            .await
            .status,
        200
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_admin_grants_platform_roles() {
    let (running, dir) = start_with(ADMIN).await;
    let api = Api::new(&running);
    let user_id = api.register_and_verify("val@example.com").await;
    let user = api.login("val@example.com", PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = api.login("root@example.com", "Admin password 42").await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let admin = admin.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        api.send("GET", "/v1/me", Some(&admin), None).await.body["roles"],
        json!(["admin"])
    );

    let path = format!("/v1/admin/users/{user_id}/roles");
    let forbidden = api
        .send("PUT", &path, Some(&user), Some(json!({"roles": ["admin"]})))
        .await;
    assert_eq!(forbidden.status, 403);
    let bad = api
        .send(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"roles": ["owner"]})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let missing = api
        .send(
            "PUT",
            "/v1/admin/users/usr_nobody/roles",
            Some(&admin),
            Some(json!({"roles": ["verifier"]})),
        )
        .await;
    assert_eq!(missing.status, 404);
    let granted = api
        .send(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"roles": ["verifier"]})),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.body["roles"], json!(["verifier"]));
    // The role arrives with the next token.
    let fresh = api.login("val@example.com", PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.send("GET", "/v1/me", Some(&fresh), None).await.body["roles"],
        json!(["verifier"])
    );
    running.shutdown().await;

    // A restart with the same configuration keeps the one admin.
    let (running, _dir) = Platform::new()
        .set_all(ADMIN)
        .reusing_data_dir(dir)
        .start()
        .await;
    let api = Api::new(&running);
    assert_eq!(
        api.login("root@example.com", "Admin password 42")
            .await
            .status,
        200
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_mfa_enrols_then_guards_every_login() {
    use amanar_accounts::totp;
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    api.register_and_verify("hedy@example.com").await;
    let access = api.login("hedy@example.com", PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let enrolment = api
        .send(
            "POST",
            "/v1/me/mfa/totp",
            Some(&access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(enrolment.status, 200, "{}", enrolment.body);
    let secret = enrolment.body["secret"].as_str().unwrap();
    assert!(
        enrolment.body["otpauthUri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/AmanarCarbon:hedy@example.com?secret=")
    );
    let key = totp::base32_decode(secret).unwrap();
    let step = totp::step_of(amanar_testkit::unix_now());
    let verify = |code: String| {
        api.send(
            "POST",
            "/v1/me/mfa/totp/verify",
            Some(&access),
            Some(json!({"code": code, "password": PASSWORD})),
        )
    };
    let wrong = verify("000000".into()).await;
    assert_eq!(wrong.status, 422);
    let verified = verify(totp::code_at_step(&key, step)).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["mfaEnabled"], true);

    let again = api
        .send(
            "POST",
            "/v1/me/mfa/totp",
            Some(&access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(again.status, 409, "an active secret is not replaced");
    let verified_again = verify(totp::code_at_step(&key, step)).await;
    assert_eq!(verified_again.status, 409, "{}", verified_again.body);
    assert_eq!(
        verified_again.body["type"],
        "https://docs.amanarcarbon.com/problems/mfa-already-enabled"
    );
    let challenge = api.login("hedy@example.com", PASSWORD).await;
    assert_eq!(challenge.status, 200);
    assert_eq!(challenge.body["challenge"], "totp");
    assert!(challenge.body.get("accessToken").is_none());
    let session = challenge.body["session"].as_str().unwrap();
    // The enrolment code was this step's, and a code works once: the next step's is in the window.
    let login_step = totp::step_of(amanar_testkit::unix_now()).max(step) + 1;
    let code = totp::code_at_step(&key, login_step);
    let replay = api
        .post(
            "/v1/auth/mfa",
            json!({"session": session, "code": totp::code_at_step(&key, step)}),
        )
        .await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(
        replay.body["type"],
        "https://docs.amanarcarbon.com/problems/invalid-mfa-code"
    );
    let tokens = api
        .post("/v1/auth/mfa", json!({"session": session, "code": code}))
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.body["accessToken"].is_string());
    let used = api
        .post("/v1/auth/mfa", json!({"session": session, "code": code}))
        .await;
    assert_eq!(used.status, 401, "a session completes once");

    let access = tokens.body["accessToken"].as_str().unwrap().to_owned();
    let disable = |body: Value| api.send("DELETE", "/v1/me/mfa", Some(&access), Some(body));
    let wrong_code = disable(json!({"password": PASSWORD, "code": "000000"})).await;
    assert_eq!(wrong_code.status, 401, "{}", wrong_code.body);
    let no_password = disable(json!({"code": code})).await;
    assert_eq!(no_password.status, 422, "the password is required too");
    let wrong_password = disable(json!({"password": "Not the password 1", "code": code})).await;
    assert_eq!(wrong_password.status, 401, "{}", wrong_password.body);
    assert_eq!(
        disable(json!({"password": PASSWORD, "code": code}))
            .await
            .status,
        401,
        "the code the login used does not work again"
    );
    let fresh = amanar_testkit::identity::code_after(&key, login_step).await;
    assert_eq!(
        disable(json!({"password": PASSWORD, "code": fresh}))
            .await
            .status,
        204
    );
    // Turning MFA off ends the sessions from before, the one that turned it off included.
    let refreshed = api
        .post(
            "/v1/auth/refresh",
            json!({"refreshToken": tokens.body["refreshToken"]}),
        )
        .await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.body);
    assert!(api.login("hedy@example.com", PASSWORD).await.body["accessToken"].is_string());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_someone_registered_first_does_not_become_the_admin() {
    let (running, dir) = start().await;
    let api = Api::new(&running);
    let squatted = api
        .post(
            "/v1/auth/register",
            json!({"email": "root@example.com", "password": "Squatter pass 99", "name": "Eve", "accountType": "individual"}),
        )
        .await;
    assert_eq!(squatted.status, 201);
    running.shutdown().await;
    let (refused, _dir) = Platform::new()
        .set_all(ADMIN)
        .reusing_data_dir(dir)
        .try_start()
        .await;
    assert!(
        refused.is_err(),
        "the runtime refuses to make the squatter an admin"
    );
}
