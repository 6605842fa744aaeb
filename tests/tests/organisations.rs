//! Organisations through the local runtime over HTTP: the authorization matrix (each role × each
//! organisation route × own and other tenant), invitations, the last-owner rule, enterprise MFA and
//! child organisations.

use amanar_journeys::start;
use serde_json::{Value, json};

const PASSWORD: &str = "Correct horse 7 battery";

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    async fn anonymous(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap_or(Value::Null)
    }

    /// Registers, verifies and logs in; returns (user id, access token).
    async fn user(&self, email: &str, account_type: &str) -> (String, String) {
        let registered = self
            .anonymous(
                "/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "name": email, "accountType": account_type}),
            )
            .await;
        let mail: Value = self
            .client
            .get(format!("{}/_local/mailbox?to={email}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = mail["items"][0]["text"].as_str().unwrap();
        let code = amanar_testkit::mailed_code(text);
        self.anonymous(
            "/v1/auth/verify-email",
            json!({"email": email, "code": code}),
        )
        .await;
        let tokens = self
            .anonymous(
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        (
            registered["userId"].as_str().unwrap().to_owned(),
            tokens["accessToken"].as_str().unwrap().to_owned(),
        )
    }

    async fn join(&self, owner: &str, org: &str, email: &str, token: &str, role: &str) {
        let (status, body) = self
            .send(
                "POST",
                &format!("/v1/orgs/{org}/members"),
                owner,
                Some(json!({"email": email, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .send(
                "POST",
                &format!("/v1/orgs/{org}/invitations/accept"),
                token,
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_its_rights_and_no_tenant_sees_another() {
    let (running, _dir) = start().await;
    let api = Api {
        base: format!("http://{}", running.addr),
        client: reqwest::Client::new(),
    };
    let (_, owner) = api.user("owner@example.com", "business").await;
    let (_, admin) = api.user("admin@example.com", "business").await;
    let (_, member) = api.user("member@example.com", "business").await;
    let (_, viewer) = api.user("viewer@example.com", "business").await;
    let (_, outsider) = api.user("outsider@example.com", "business").await;
    let (target_id, target) = api.user("target@example.com", "business").await;

    let (status, org) = api
        .send("POST", "/v1/orgs", &owner, Some(json!({"name": "Acme"})))
        .await;
    assert_eq!(status, 201, "{org}");
    let org = org["orgId"].as_str().unwrap().to_owned();
    let (_, other) = api
        .send(
            "POST",
            "/v1/orgs",
            &outsider,
            Some(json!({"name": "Other Ltd"})),
        )
        .await;
    let other = other["orgId"].as_str().unwrap().to_owned();
    api.join(&owner, &org, "admin@example.com", &admin, "admin")
        .await;
    api.join(&owner, &org, "member@example.com", &member, "member")
        .await;
    api.join(&owner, &org, "viewer@example.com", &viewer, "viewer")
        .await;
    api.join(&owner, &org, "target@example.com", &target, "member")
        .await;

    // Expected status for (owner, admin, member, viewer, outsider).
    type Case = (&'static str, String, Option<Value>, [u16; 5]);
    let cases: Vec<Case> = vec![
        (
            "GET",
            format!("/v1/orgs/{org}"),
            None,
            [200, 200, 200, 200, 404],
        ),
        (
            "PATCH",
            format!("/v1/orgs/{org}"),
            Some(json!({"name": "Acme"})),
            [200, 200, 403, 403, 404],
        ),
        (
            "GET",
            format!("/v1/orgs/{org}/members"),
            None,
            [200, 200, 200, 200, 404],
        ),
        (
            "POST",
            format!("/v1/orgs/{org}/members"),
            Some(json!({"email": "new@example.com", "role": "viewer"})),
            [201, 201, 403, 403, 404],
        ),
        (
            "PATCH",
            format!("/v1/orgs/{org}/members/{target_id}"),
            Some(json!({"role": "member"})),
            [200, 200, 403, 403, 404],
        ),
        (
            "GET",
            format!("/v1/orgs/{org}/audit-log"),
            None,
            [200, 200, 403, 403, 404],
        ),
    ];
    let callers = [&owner, &admin, &member, &viewer, &outsider];
    for (method, path, body, expected) in &cases {
        for (caller, want) in callers.iter().zip(expected) {
            let (status, answer) = api.send(method, path, caller, body.clone()).await;
            assert_eq!(status, *want, "{method} {path} -> {answer}");
        }
    }
    // The other tenant's organisation does not exist for Acme's owner, for any route.
    for (method, path, body, _) in &cases {
        let path = path.replace(&org, &other);
        let (status, _) = api.send(method, &path, &owner, body.clone()).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    // Refused writes changed nothing.
    let (_, seen) = api
        .send("GET", &format!("/v1/orgs/{org}"), &owner, None)
        .await;
    assert_eq!(seen["name"], "Acme");
    let (_, outsiders) = api
        .send(
            "PATCH",
            &format!("/v1/orgs/{other}"),
            &owner,
            Some(json!({"name": "Hijacked"})),
        )
        .await;
    assert_eq!(outsiders["status"], 404);
    let (_, theirs) = api
        .send("GET", &format!("/v1/orgs/{other}"), &outsider, None)
        .await;
    assert_eq!(theirs["name"], "Other Ltd");

    // Removing members: viewers and members cannot, admins can; anyone can leave.
    let delete = format!("/v1/orgs/{org}/members/{target_id}");
    assert_eq!(api.send("DELETE", &delete, &viewer, None).await.0, 403);
    assert_eq!(api.send("DELETE", &delete, &member, None).await.0, 403);
    assert_eq!(api.send("DELETE", &delete, &outsider, None).await.0, 404);
    assert_eq!(api.send("DELETE", &delete, &admin, None).await.0, 204);
    assert_eq!(
        api.send("GET", &format!("/v1/orgs/{org}"), &target, None)
            .await
            .0,
        404,
        "a removed member is out"
    );
    let (_, viewer_me) = api.send("GET", "/v1/me", &viewer, None).await;
    let viewer_id = viewer_me["userId"].as_str().unwrap();
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/v1/orgs/{org}/members/{viewer_id}"),
            &viewer,
            None
        )
        .await
        .0,
        204
    );

    // Admins cannot touch owners, and the last owner cannot go.
    let (_, owner_me) = api.send("GET", "/v1/me", &owner, None).await;
    let owner_id = owner_me["userId"].as_str().unwrap();
    let owner_path = format!("/v1/orgs/{org}/members/{owner_id}");
    assert_eq!(
        api.send(
            "PATCH",
            &owner_path,
            &admin,
            Some(json!({"role": "member"}))
        )
        .await
        .0,
        403
    );
    let (status, problem) = api
        .send("PATCH", &owner_path, &owner, Some(json!({"role": "admin"})))
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (
            409,
            Some("https://docs.amanarcarbon.com/problems/last-owner")
        )
    );
    assert_eq!(api.send("DELETE", &owner_path, &owner, None).await.0, 409);

    // My organisations lists memberships with roles; the audit logs recorded the changes.
    let (_, mine) = api.send("GET", "/v1/orgs", &member, None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["role"], "member");
    let (_, log) = api
        .send(
            "GET",
            &format!("/v1/orgs/{org}/audit-log?limit=100"),
            &owner,
            None,
        )
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "org.created",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.removed",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprises_need_mfa_and_administer_their_child_organisations() {
    use amanar_accounts::totp;
    let (running, _dir) = start().await;
    let api = Api {
        base: format!("http://{}", running.addr),
        client: reqwest::Client::new(),
    };
    let (_, enterprise) = api.user("cfo@bigcorp.example", "enterprise").await;
    let (_, business) = api.user("smb@example.com", "business").await;

    let (status, problem) = api
        .send(
            "POST",
            "/v1/orgs",
            &enterprise,
            Some(json!({"name": "BigCorp"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        problem["type"],
        "https://docs.amanarcarbon.com/problems/mfa-required"
    );
    assert_eq!(api.send("GET", "/v1/orgs", &enterprise, None).await.0, 403);

    let (_, enrolment) = api
        .send(
            "POST",
            "/v1/me/mfa/totp",
            &enterprise,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    let key = totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = amanar_testkit::unix_now();
    let code = totp::code_at_step(&key, totp::step_of(now));
    let (status, _) = api
        .send(
            "POST",
            "/v1/me/mfa/totp/verify",
            &enterprise,
            Some(json!({"code": code, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, parent) = api
        .send(
            "POST",
            "/v1/orgs",
            &enterprise,
            Some(json!({"name": "BigCorp"})),
        )
        .await;
    assert_eq!(status, 201, "{parent}");
    let parent = parent["orgId"].as_str().unwrap().to_owned();
    let (status, child) = api
        .send(
            "POST",
            "/v1/orgs",
            &enterprise,
            Some(json!({"name": "BigCorp UK", "parentOrgId": parent})),
        )
        .await;
    assert_eq!(status, 201, "{child}");
    let child_id = child["orgId"].as_str().unwrap().to_owned();
    let (_, seen) = api
        .send("GET", &format!("/v1/orgs/{parent}"), &enterprise, None)
        .await;
    assert_eq!(seen["children"][0]["orgId"], child_id.as_str());

    // A business account cannot create children, even under its own organisation.
    let (_, own) = api
        .send("POST", "/v1/orgs", &business, Some(json!({"name": "SMB"})))
        .await;
    let own = own["orgId"].as_str().unwrap();
    let (status, problem) = api
        .send(
            "POST",
            "/v1/orgs",
            &business,
            Some(json!({"name": "SMB child", "parentOrgId": own})),
        )
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (
            403,
            Some("https://docs.amanarcarbon.com/problems/enterprise-only")
        )
    );
    // Nor see the enterprise's child.
    assert_eq!(
        api.send("GET", &format!("/v1/orgs/{child_id}"), &business, None)
            .await
            .0,
        404
    );
    running.shutdown().await;
}
