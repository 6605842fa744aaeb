//! Helpers the end-to-end journeys share: the one way to start a local runtime (with configuration
//! overrides, on a fresh or reused data directory), and an HTTP client that registers users, logs
//! them in and calls the API as them.

use amanar_app::config::{Config, Face};
use amanar_local::{Running, StartError};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The configuration variable names overrides are given by.
pub use amanar_app::config::vars;

/// The password every journey user has.
pub const PASSWORD: &str = "Correct horse 7 battery";

/// A local runtime to start: loopback on a free port, data in a temporary directory, plus overrides.
#[derive(Default)]
pub struct Platform {
    overrides: Vec<(String, String)>,
    data_dir: Option<TempDir>,
}

impl Platform {
    /// The journey defaults: a free loopback port and a fresh data directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one configuration variable (a name from [`vars`]); a later setting of a name wins.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.overrides.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets each `(name, value)` in turn, as [`Platform::set`].
    pub fn set_all(self, overrides: &[(&str, &str)]) -> Self {
        overrides
            .iter()
            .fold(self, |platform, (name, value)| platform.set(name, value))
    }

    /// Starts on a data directory an earlier runtime used (a restart) instead of a fresh one.
    pub fn reusing_data_dir(mut self, dir: TempDir) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Starts the runtime, panicking if it refuses; returns it and its data directory's guard.
    pub async fn start(self) -> (Running, TempDir) {
        let (running, dir) = self.try_start().await;
        (running.expect("the local runtime starts"), dir)
    }

    /// Starts the runtime and hands back its refusal, if any; an invalid configuration panics.
    pub async fn try_start(self) -> (Result<Running, StartError>, TempDir) {
        let dir = self
            .data_dir
            .unwrap_or_else(|| tempfile::tempdir().expect("a temporary directory"));
        let data_dir = dir.path().to_string_lossy().into_owned();
        // The public URL defaults to `http://` + the address; the runtime swaps `:0` for the bound port.
        let defaults = [
            (vars::DATA_DIR, data_dir.as_str()),
            (vars::ADDR, "127.0.0.1:0"),
        ];
        let config = Config::from_lookup(Face::Local, |name| {
            let overridden = self.overrides.iter().rev().find(|(n, _)| n == name);
            let default = defaults.iter().find(|(n, _)| *n == name);
            overridden
                .map(|(_, value)| value.clone())
                .or_else(|| default.map(|(_, value)| (*value).to_owned()))
        })
        .expect("the journey configuration is valid");
        (amanar_local::start(config).await, dir)
    }
}

/// Starts the local runtime with the journey defaults (see [`Platform`]).
pub async fn start() -> (Running, TempDir) {
    Platform::new().start().await
}

/// Starts the local runtime with the journey defaults and these `(variable, value)` overrides.
pub async fn start_with(overrides: &[(&str, &str)]) -> (Running, TempDir) {
    Platform::new().set_all(overrides).start().await
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    Anonymous,
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// An API client of one running platform.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A response: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Api {
    pub fn new(running: &Running) -> Self {
        Self {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, who: As<'_>, body: Option<Value>) -> Answer {
        self.call_with(method, path, who, body, &[]).await
    }

    /// [`Self::call`] with extra request headers (`Idempotency-Key`...).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(
            method.parse().expect("a method"),
            format!("{}{path}", self.base),
        );
        request = match who {
            As::Anonymous => request,
            As::Bearer(token) => request.bearer_auth(token),
            As::ApiKey(key) => request.header("x-api-key", key),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the runtime answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, who: As<'_>) -> Answer {
        self.call("GET", path, who, None).await
    }

    pub async fn post(&self, path: &str, who: As<'_>, body: Value) -> Answer {
        self.call("POST", path, who, Some(body)).await
    }

    /// Registers, verifies (with the mailed code) and logs in; returns (user id, access token).
    pub async fn user(&self, email: &str, account_type: &str) -> (String, String) {
        let registered = self
            .post(
                "/v1/auth/register",
                As::Anonymous,
                json!({"email": email, "password": PASSWORD, "name": email, "accountType": account_type}),
            )
            .await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        let mail = self
            .get(&format!("/_local/mailbox?to={email}"), As::Anonymous)
            .await;
        let code = amanar_testkit::mailed_code(mail.body["items"][0]["text"].as_str().unwrap());
        let verified = self
            .post(
                "/v1/auth/verify-email",
                As::Anonymous,
                json!({"email": email, "code": code}),
            )
            .await;
        assert!(verified.status < 300, "{}", verified.body);
        let tokens = self
            .post(
                "/v1/auth/login",
                As::Anonymous,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(tokens.status, 200, "{}", tokens.body);
        (
            registered.body["userId"].as_str().unwrap().to_owned(),
            tokens.body["accessToken"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an organisation owned by the token's user; returns its id.
    pub async fn org(&self, token: &str, name: &str) -> String {
        let created = self
            .post("/v1/orgs", As::Bearer(token), json!({"name": name}))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["orgId"].as_str().unwrap().to_owned()
    }

    /// Invites `email` to the organisation with `role` and accepts as its user.
    pub async fn join(&self, owner: &str, org: &str, email: &str, token: &str, role: &str) {
        let invited = self
            .post(
                &format!("/v1/orgs/{org}/members"),
                As::Bearer(owner),
                json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(invited.status, 201, "{}", invited.body);
        let accepted = self
            .call(
                "POST",
                &format!("/v1/orgs/{org}/invitations/accept"),
                As::Bearer(token),
                None,
            )
            .await;
        assert!(accepted.status < 300, "{}", accepted.body);
    }

    /// Sends a file with the upload request the API handed out (`{method, url, headers}`).
    pub async fn send_upload(&self, upload: &Value, file: &[u8]) {
        let mut request = self
            .http
            .request(
                upload["method"]
                    .as_str()
                    .expect("a method")
                    .parse()
                    .expect("an HTTP method"),
                upload["url"].as_str().expect("a url"),
            )
            .body(file.to_vec());
        for (name, value) in upload["headers"].as_object().expect("signed headers") {
            request = request.header(name.as_str(), value.as_str().expect("a header value"));
        }
        let sent = request.send().await.expect("the runtime answers");
        assert_eq!(
            sent.status(),
            200,
            "{}",
            sent.text().await.unwrap_or_default()
        );
    }

    /// Fetches a URL the API handed out (a signed download), as text.
    pub async fn fetch_text(&self, url: &str) -> (u16, String) {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .expect("the runtime answers");
        (
            response.status().as_u16(),
            response.text().await.expect("a body"),
        )
    }
}
