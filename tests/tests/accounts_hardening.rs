//! The attacks of the accounts security review, replayed through the local runtime over HTTP: each
//! test fails if its hole comes back (second-factor guessing, MFA turned off with a token alone,
//! secrets replayed by idempotency keys, responses cached or sniffed).

use amanar_accounts::totp;
use amanar_journeys::{Api, As, PASSWORD, Platform, start, vars};
use serde_json::{Value, json};

/// A user with MFA on: (user id, access token, TOTP key, the last step whose code was used).
async fn user_with_mfa(api: &Api, email: &str) -> (String, String, Vec<u8>, i64) {
    let (user_id, access) = api.user(email, "business").await;
    let enrolment = api
        .post(
            "/v1/me/mfa/totp",
            As::Bearer(&access),
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(enrolment.status, 200, "{}", enrolment.body);
    let key = totp::base32_decode(enrolment.body["secret"].as_str().unwrap()).unwrap();
    let step = totp::step_of(amanar_testkit::unix_now());
    let verified = api
        .post(
            "/v1/me/mfa/totp/verify",
            As::Bearer(&access),
            json!({"code": totp::code_at_step(&key, step), "password": PASSWORD}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    (user_id, access, key, step)
}

async fn challenge(api: &Api, email: &str) -> String {
    let answer = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["session"].as_str().unwrap().to_owned()
}

/// A six-digit code that is not the current one (nor its neighbours).
fn wrong_code(key: &[u8]) -> String {
    let now = totp::step_of(amanar_testkit::unix_now());
    let taken: Vec<String> = (now - 2..=now + 2)
        .map(|s| totp::code_at_step(key, s))
        .collect();
    (0..)
        .map(|n| format!("{:06}", 123_456 + n))
        .find(|c| !taken.contains(c))
        .unwrap()
}

/// The code in the newest password-reset mail to `email`.
async fn reset_code(api: &Api, email: &str) -> String {
    let mail = api
        .get(&format!("/_local/mailbox?to={email}"), As::Anonymous)
        .await;
    let reset = mail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("Reset"))
        .expect("a reset mail")
        .clone();
    amanar_testkit::mailed_code(reset["text"].as_str().unwrap())
}

async fn audit_actions(api: &Api, token: &str) -> Vec<String> {
    let log = api
        .get("/v1/me/audit-log?limit=100", As::Bearer(token))
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_the_second_factor_even_across_fresh_logins() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "mfa-guess@example.com";
    let (_, access, key, enrolled_step) = user_with_mfa(&api, email).await;
    let wrong = wrong_code(&key);

    // The attack of the review: log in again (a right password) before each batch of guesses.
    // The count is the user's own, so fresh logins do not reset it: 5 guesses, then 423.
    let mut refused_at = None;
    'rounds: for round in 0..6 {
        let session = challenge(&api, email).await;
        for guess in 0..4 {
            let answer = api
                .post(
                    "/v1/auth/mfa",
                    As::Anonymous,
                    json!({"session": session, "code": wrong}),
                )
                .await;
            match answer.status {
                401 => assert_eq!(
                    answer.body["type"],
                    "https://docs.amanarcarbon.com/problems/invalid-mfa-code"
                ),
                423 => {
                    let retry: u64 = answer.header("retry-after").parse().unwrap();
                    assert!((3500..=3600).contains(&retry), "an hour's lock: {retry}");
                    refused_at = Some(round * 4 + guess);
                    break 'rounds;
                }
                other => panic!("unexpected {other}: {}", answer.body),
            }
        }
    }
    assert_eq!(
        refused_at,
        Some(5),
        "the sixth wrong code is refused unchecked"
    );

    // Locked: even the right code is refused now.
    let session = challenge(&api, email).await;
    let step = totp::step_of(amanar_testkit::unix_now()).max(enrolled_step + 1);
    let right = totp::code_at_step(&key, step);
    let locked = api
        .post(
            "/v1/auth/mfa",
            As::Anonymous,
            json!({"session": session, "code": right}),
        )
        .await;
    assert_eq!(locked.status, 423, "{}", locked.body);
    let actions = audit_actions(&api, &access).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.mfa_locked").count(),
        1
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.mfa_failed").count(),
        5
    );

    // A password reset proves the mailbox, and the second factor exists for when someone else
    // holds it: the reset does not lift the second-factor lock, which runs out on its own.
    let forgot = api
        .post(
            "/v1/auth/password/forgot",
            As::Anonymous,
            json!({"email": email}),
        )
        .await;
    assert_eq!(forgot.status, 202);
    let code = reset_code(&api, email).await;
    let reset = api
        .post(
            "/v1/auth/password/reset",
            As::Anonymous,
            json!({"email": email, "code": code, "newPassword": PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let session = challenge(&api, email).await;
    let still = api
        .post(
            "/v1/auth/mfa",
            As::Anonymous,
            json!({"session": session, "code": right}),
        )
        .await;
    assert_eq!(still.status, 423, "{}", still.body);
    running.shutdown().await;
}

/// A stolen access token alone cannot put the thief's authenticator on an account: setting up
/// TOTP takes the password at both steps, and wrong ones count on the login limit (423 after 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_up_a_second_factor_takes_the_password_and_is_bounded_like_a_login() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "mfa-on@example.com";
    let (_, access) = api.user(email, "business").await;
    let enrol = |body: Value| api.post("/v1/me/mfa/totp", As::Bearer(&access), body);
    let verify = |body: Value| api.post("/v1/me/mfa/totp/verify", As::Bearer(&access), body);

    let no_password = enrol(json!({})).await;
    assert_eq!(no_password.status, 422, "{}", no_password.body);
    let wrong = enrol(json!({"password": "Not the password 9"})).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.get("secret").is_none());

    let enrolment = enrol(json!({"password": PASSWORD})).await;
    assert_eq!(enrolment.status, 200, "{}", enrolment.body);
    let key = totp::base32_decode(enrolment.body["secret"].as_str().unwrap()).unwrap();
    let code = totp::code_at_step(&key, totp::step_of(amanar_testkit::unix_now()));
    let code_only = verify(json!({"code": code})).await;
    assert_eq!(code_only.status, 422, "{}", code_only.body);
    let not_a_code = verify(json!({"code": "12345", "password": PASSWORD})).await;
    assert_eq!(not_a_code.status, 422, "{}", not_a_code.body);
    let mut locked = None;
    for attempt in 0..7 {
        let answer = verify(json!({"code": code, "password": "Not the password 9"})).await;
        match answer.status {
            401 => {}
            423 => {
                assert!(answer.header("retry-after").parse::<u64>().unwrap() > 0);
                locked = Some(attempt);
                break;
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    // The right password at enrolment cleared the count, as a login does: five wrong ones, then
    // the lock.
    assert_eq!(locked, Some(5), "the login limit binds the setup");
    let me = api.get("/v1/me", As::Bearer(&access)).await;
    assert_eq!(me.body["mfaEnabled"], false, "nothing was turned on");
    let actions = audit_actions(&api, &access).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "mfa.setup_failed").count(),
        6,
        "each wrong password at setup, and none for the refusal: {actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "mfa.enrolment_started"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "auth.locked"), "{actions:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_mfa_off_takes_password_and_code_and_is_bounded_like_a_login() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "mfa-off@example.com";
    let (_, access, key, _) = user_with_mfa(&api, email).await;
    let disable = |body: Value| api.call("DELETE", "/v1/me/mfa", As::Bearer(&access), Some(body));

    // The token alone (the old query parameter, or a body without the password) does nothing.
    let code_only = api
        .call(
            "DELETE",
            "/v1/me/mfa?code=000000",
            As::Bearer(&access),
            None,
        )
        .await;
    assert!(
        matches!(code_only.status, 400 | 415 | 422),
        "{}",
        code_only.status
    );
    let wrong = wrong_code(&key);
    for attempt in 0..5 {
        let answer = disable(json!({"password": PASSWORD, "code": wrong})).await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.body);
    }
    let locked = disable(json!({"password": PASSWORD, "code": wrong})).await;
    assert_eq!(locked.status, 423, "{}", locked.body);
    assert!(!locked.header("retry-after").is_empty());
    let me = api.get("/v1/me", As::Bearer(&access)).await;
    assert_eq!(me.body["mfaEnabled"], true, "MFA stays on");
    let actions = audit_actions(&api, &access).await;
    assert!(
        actions.iter().any(|a| a == "mfa.disable_failed"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "auth.mfa_locked"),
        "{actions:?}"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_when_turning_mfa_off_counts_towards_the_login_lockout() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "mfa-pw@example.com";
    let (_, access, key, _) = user_with_mfa(&api, email).await;
    for _ in 0..5 {
        let answer = api
            .call(
                "DELETE",
                "/v1/me/mfa",
                As::Bearer(&access),
                Some(json!({"password": "Guessed password 1", "code": wrong_code(&key)})),
            )
            .await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(
            answer.body["type"],
            "https://docs.amanarcarbon.com/problems/invalid-credentials"
        );
    }
    let login = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        login.status, 423,
        "the guesses locked the login: {}",
        login.body
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carrying_secrets_are_never_stored_for_replay_nor_cached() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, owner) = api.user("keys-owner@example.com", "business").await;
    let org = api.org(&owner, "Replay Ltd").await;
    let path = format!("/v1/orgs/{org}/api-keys");
    let body = json!({"name": "ci", "scopes": ["orgs:read"]});
    let idem = [("Idempotency-Key", "create-ci-key-1")];
    let first = api
        .call_with("POST", &path, As::Bearer(&owner), Some(body.clone()), &idem)
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(first.header("cache-control"), "no-store");
    let replay = api
        .call_with("POST", &path, As::Bearer(&owner), Some(body.clone()), &idem)
        .await;
    assert_eq!(replay.status, 409, "{}", replay.body);
    assert_eq!(
        replay.body["type"],
        "https://docs.amanarcarbon.com/problems/idempotency-replay-withheld"
    );
    assert!(!replay.body.to_string().contains(&secret));
    let keys = api.get(&path, As::Bearer(&owner)).await;
    assert_eq!(
        keys.body["items"].as_array().unwrap().len(),
        1,
        "one key was made"
    );

    // The idempotency record keeps the key, not the response.
    let owner_id = me(&api, &owner).await;
    let record = running
        .ports()
        .table
        .get(&amanar_core::keys::idempotency(
            &amanar_http::scope::user_subject(&owner_id),
            "create-ci-key-1",
        ))
        .await
        .unwrap()
        .expect("the key is held");
    assert_eq!(record["state"], "withheld");
    assert!(!Value::Object(record).to_string().contains(&secret));

    // The TOTP seed is a secret too, and the body that asks for it carries the password: on the
    // MFA routes a key is ignored, so neither the answer nor a hash of the body is stored, and a
    // retry is a new enrolment (a new seed), never a replay of the old one.
    let idem = [("Idempotency-Key", "enrol-totp-1")];
    let enrol = api
        .call_with(
            "POST",
            "/v1/me/mfa/totp",
            As::Bearer(&owner),
            Some(json!({"password": PASSWORD})),
            &idem,
        )
        .await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert_eq!(enrol.header("cache-control"), "no-store");
    let seed = enrol.body["secret"].as_str().unwrap().to_owned();
    let again = api
        .call_with(
            "POST",
            "/v1/me/mfa/totp",
            As::Bearer(&owner),
            Some(json!({"password": PASSWORD})),
            &idem,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_ne!(again.body["secret"].as_str().unwrap(), seed, "a new seed");
    assert!(
        running
            .ports()
            .table
            .get(&amanar_core::keys::idempotency(
                &amanar_http::scope::user_subject(&owner_id),
                "enrol-totp-1",
            ))
            .await
            .unwrap()
            .is_none(),
        "nothing of a body that carries a password is stored"
    );

    // Token answers are never cached; every answer says nosniff.
    let login = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": "keys-owner@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.header("cache-control"), "no-store");
    for answer in [
        &login,
        &api.get("/v1/health", As::Anonymous).await,
        &api.get("/v1/no-such-route", As::Anonymous).await,
    ] {
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
    }
    running.shutdown().await;
}

async fn me(api: &Api, token: &str) -> String {
    let me = api.get("/v1/me", As::Bearer(token)).await;
    me.body["userId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_calls_are_limited_per_client_address_with_or_without_a_token() {
    let (running, _dir) = Platform::new()
        .set(vars::RATE_LIMIT_AUTH_ADDRESS, "8")
        .start()
        .await;
    let api = Api::new(&running);
    let (_, token) = api.user("limited@example.com", "individual").await;
    // Registering, verifying and logging in took 3 of this address's 8.
    let login = json!({"email": "nobody@example.com", "password": "Wrong password 1"});
    for n in 0..5 {
        // A token does not buy a higher limit on the auth routes: they count by address anyway.
        let who = if n % 2 == 0 {
            As::Anonymous
        } else {
            As::Bearer(&token)
        };
        let answer = api.post("/v1/auth/login", who, login.clone()).await;
        assert_ne!(answer.status, 429, "{}", answer.body);
    }
    let limited = api.post("/v1/auth/login", As::Bearer(&token), login).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(!limited.header("retry-after").is_empty());
    // The address limit covers the auth routes only: the user's other calls count on their own.
    assert_eq!(api.get("/v1/me", As::Bearer(&token)).await.status, 200);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_mfa_on_ends_the_sessions_from_before() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "sessions@example.com";
    api.user(email, "business").await;
    let login = || {
        api.post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": email, "password": PASSWORD}),
        )
    };
    let (phone, laptop) = (login().await, login().await);
    let access = phone.body["accessToken"].as_str().unwrap();
    let enrolment = api
        .post(
            "/v1/me/mfa/totp",
            As::Bearer(access),
            json!({"password": PASSWORD}),
        )
        .await;
    let key = totp::base32_decode(enrolment.body["secret"].as_str().unwrap()).unwrap();
    let code = totp::code_at_step(&key, totp::step_of(amanar_testkit::unix_now()));
    let verified = api
        .post(
            "/v1/me/mfa/totp/verify",
            As::Bearer(access),
            json!({"code": code, "password": PASSWORD}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    for session in [&phone, &laptop] {
        let refreshed = api
            .post(
                "/v1/auth/refresh",
                As::Anonymous,
                json!({"refreshToken": session.body["refreshToken"]}),
            )
            .await;
        assert_eq!(refreshed.status, 401, "a session from before MFA lives on");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_mailed_codes_are_capped_per_address_and_day_and_stored_only_keyed() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let email = "codes@example.com";
    api.user(email, "individual").await;
    let forgot = || {
        api.post(
            "/v1/auth/password/forgot",
            As::Anonymous,
            json!({"email": email}),
        )
    };
    assert_eq!(forgot().await.status, 202);
    let reset = |code: String| {
        api.post(
            "/v1/auth/password/reset",
            As::Anonymous,
            json!({"email": email, "code": code, "newPassword": "Brand new horse 5"}),
        )
    };
    for n in 0..10 {
        let answer = reset(format!("{:06}", 100_000 + n)).await;
        assert_eq!(answer.status, 422, "guess {n}: {}", answer.body);
    }
    // The eleventh check of the day is refused unchecked, even with the right code.
    let code = reset_code(&api, email).await;
    let locked = reset(code.clone()).await;
    assert_eq!(locked.status, 423, "{}", locked.body);

    // The stored code is an HMAC under a key outside the table, not a hash anyone can brute-force.
    let stored = running
        .ports()
        .table
        .get(&amanar_core::keys::idp_code(email, "reset"))
        .await
        .unwrap()
        .expect("the reset code is stored");
    let bare = {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for part in [email, "reset", code.as_str()] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(hash.finalize())
    };
    assert_ne!(stored["hash"], json!(bare));
    assert!(!Value::Object(stored).to_string().contains(&code));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_wrong_passwords_are_checked_five_times_and_every_one_is_audited() {
    let (running, _dir) = start().await;
    let api = std::sync::Arc::new(Api::new(&running));
    let email = "parallel@example.com";
    let (_, token) = api.user(email, "individual").await;
    let guesses: Vec<_> = (0..30)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                api.post(
                    "/v1/auth/login",
                    As::Anonymous,
                    json!({"email": email, "password": format!("Wrong password {n}")}),
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    statuses.sort();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 423).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    let actions = audit_actions(&api, &token).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login_failed").count(),
        5
    );
    assert_eq!(actions.iter().filter(|a| *a == "auth.locked").count(), 1);
    running.shutdown().await;
}
