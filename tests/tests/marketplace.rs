//! The marketplace through the local runtime over HTTP: a developer drafts a project, uploads a
//! real PDF (accepted) and an executable named `.pdf` (rejected), submits; a verifier requests
//! changes; the developer edits and resubmits; the verifier approves. Strangers get 404, buyers
//! cannot review, and a verifier cannot review a project of their own organisation.

use std::time::{Duration, Instant};

use amanar_journeys::{Api, As, start_with, vars};
use serde_json::{Value, json};

const ADMIN: &[(&str, &str)] = &[
    (vars::ADMIN_EMAIL, "root@example.com"),
    (vars::ADMIN_PASSWORD, "Admin password 42"),
];

/// A small but complete PDF: header, one page, cross-reference table and trailer.
fn real_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    pdf.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    pdf
}

/// The first bytes of an x86-64 Linux executable.
fn executable() -> Vec<u8> {
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(256, 0);
    elf
}

fn project_fields() -> Value {
    json!({
        "name": "Bale Mountains Eco-region REDD+ project",
        "description": "Avoided deforestation in the Bale Mountains of Ethiopia.",
        "category": "forest",
        "projectType": "avoided forest conversion",
        "protocol": "vm0015",
        "standard": "VCS",
        "mechanism": "avoidance",
        "issuanceType": "ex_post",
        "country": "ET",
        "location": {"latitude": 6.75, "longitude": 39.75, "name": "Bale Mountains, Oromia"},
        "sdgs": [13, 15],
        "labels": ["ccb"],
        "registryProjectId": "VCS1340",
        "registryUrl": "https://registry.verra.org/app/projectDetail/VCS/1340"
    })
}

/// Declares a document, uploads the file to the returned URL and returns the document's id.
async fn upload(api: &Api, token: &str, project: &str, name: &str, file: &[u8]) -> String {
    let declared = api
        .post(
            &format!("/v1/projects/{project}/documents"),
            As::Bearer(token),
            json!({"kind": "project_design", "filename": name, "contentType": "application/pdf", "size": file.len()}),
        )
        .await;
    assert_eq!(declared.status, 201, "{:#}", declared.body);
    assert_eq!(declared.body["state"], "pending");
    api.send_upload(&declared.body["upload"], file).await;
    declared.body["id"].as_str().unwrap().to_owned()
}

/// Polls a project's document until its check settles it.
async fn settled(api: &Api, token: &str, project: &str, document: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let documents = api
            .get(
                &format!("/v1/projects/{project}/documents"),
                As::Bearer(token),
            )
            .await;
        assert_eq!(documents.status, 200, "{}", documents.body);
        let found = documents
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == document)
            .cloned();
        if let Some(d) = found.filter(|d| d["state"] != "pending") {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "still pending: {:#}",
            documents.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first admin's access token.
async fn admin_token(api: &Api) -> String {
    let admin = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": "root@example.com", "password": "Admin password 42"}),
        )
        .await;
    admin.body["accessToken"].as_str().unwrap().to_owned()
}

/// Registers a user and has the admin make them a verifier; returns (user id, fresh token).
async fn verifier(api: &Api, email: &str) -> (String, String) {
    let (user_id, _) = api.user(email, "individual").await;
    let admin = admin_token(api).await;
    let granted = api
        .call(
            "PUT",
            &format!("/v1/admin/users/{user_id}/roles"),
            As::Bearer(&admin),
            Some(json!({"roles": ["verifier"]})),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let fresh = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": email, "password": amanar_journeys::PASSWORD}),
        )
        .await;
    (
        user_id,
        fresh.body["accessToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_goes_from_draft_through_changes_to_approval_with_checked_documents() {
    let (running, _dir) = start_with(ADMIN).await;
    let api = Api::new(&running);
    let (_, dev) = api.user("dev@bale.example", "project_developer").await;
    let (_, other_dev) = api.user("dev@elsewhere.example", "project_developer").await;
    let (_, buyer) = api.user("buyer@example.com", "individual").await;
    let (val_id, val) = verifier(&api, "val@verify.example").await;
    let (_, other_val) = verifier(&api, "otto@verify.example").await;

    let refused = api
        .post("/v1/projects", As::Bearer(&buyer), project_fields())
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let mut bad = project_fields();
    bad["projectType"] = json!("solar farm");
    bad["country"] = json!("XX");
    let invalid = api.post("/v1/projects", As::Bearer(&dev), bad).await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    let fields: Vec<&str> = invalid.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"projectType") && fields.contains(&"country"),
        "{fields:?}"
    );

    let created = api
        .post("/v1/projects", As::Bearer(&dev), project_fields())
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "draft");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/projects/{id}");
    assert_eq!(
        api.get(&path, As::Bearer(&other_dev)).await.status,
        404,
        "another developer sees nothing"
    );
    let mine = api.get("/v1/me/projects", As::Bearer(&dev)).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["items"][0]["id"], id.as_str());
    let theirs = api.get("/v1/me/projects", As::Bearer(&other_dev)).await;
    assert_eq!(theirs.body["items"], json!([]), "only one's own projects");
    assert_eq!(api.get(&path, As::Bearer(&buyer)).await.status, 404);
    assert_eq!(
        api.get(&path, As::Bearer(&val)).await.status,
        404,
        "a draft is private, verifiers included"
    );

    let early = api
        .call("POST", &format!("{path}/submit"), As::Bearer(&dev), None)
        .await;
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(
        early.body["type"]
            .as_str()
            .unwrap()
            .ends_with("design-document-missing"),
        "{}",
        early.body
    );

    let pdf = upload(&api, &dev, &id, "project-design.pdf", &real_pdf()).await;
    let fake = upload(&api, &dev, &id, "definitely-a-pdf.pdf", &executable()).await;
    assert_eq!(settled(&api, &dev, &id, &pdf).await["state"], "accepted");
    let rejected = settled(&api, &dev, &id, &fake).await;
    assert_eq!(rejected["state"], "rejected");
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .contains("not application/pdf"),
        "{rejected}"
    );

    let link = api
        .get(
            &format!("{path}/documents/{pdf}/download"),
            As::Bearer(&dev),
        )
        .await;
    assert_eq!(link.status, 200, "{}", link.body);
    let (status, body) = api.fetch_text(link.body["url"].as_str().unwrap()).await;
    assert_eq!((status, body.starts_with("%PDF-1.7")), (200, true));
    assert_eq!(
        api.get(
            &format!("{path}/documents/{fake}/download"),
            As::Bearer(&dev)
        )
        .await
        .status,
        409
    );
    assert_eq!(
        api.get(
            &format!("{path}/documents/{pdf}/download"),
            As::Bearer(&buyer)
        )
        .await
        .status,
        404
    );

    let submitted = api
        .call("POST", &format!("{path}/submit"), As::Bearer(&dev), None)
        .await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    assert_eq!(submitted.body["status"], "submitted");
    let late = api
        .post(&format!("{path}/documents"), As::Bearer(&dev), json!({"kind": "other", "filename": "late.pdf", "contentType": "application/pdf", "size": 10}))
        .await;
    assert_eq!(
        late.status, 409,
        "no documents while under verification: {}",
        late.body
    );
    assert_eq!(
        api.get(
            &format!("{path}/documents/{pdf}/download"),
            As::Bearer(&val)
        )
        .await
        .status,
        200,
        "verifiers read a submitted project's documents"
    );

    let by_buyer = api
        .call(
            "POST",
            &format!("{path}/reviews/take"),
            As::Bearer(&buyer),
            None,
        )
        .await;
    assert_eq!(by_buyer.status, 403, "a buyer cannot review");
    assert!(
        by_buyer.body["type"]
            .as_str()
            .unwrap()
            .ends_with("verifier-only"),
        "{}",
        by_buyer.body
    );
    let queue = api.get("/v1/verification/queue", As::Bearer(&val)).await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(
        queue.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    assert_eq!(
        api.get("/v1/verification/queue", As::Bearer(&dev))
            .await
            .status,
        403
    );

    let taken = api
        .call(
            "POST",
            &format!("{path}/reviews/take"),
            As::Bearer(&val),
            None,
        )
        .await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(taken.body["status"], "under_review");
    let again = api
        .call(
            "POST",
            &format!("{path}/reviews/take"),
            As::Bearer(&val),
            None,
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("under_review"),
        "the 409 names the state: {}",
        again.body
    );
    let no_notes = api
        .post(
            &format!("{path}/reviews/verification"),
            As::Bearer(&val),
            json!({"decision": "request_changes"}),
        )
        .await;
    assert_eq!(no_notes.status, 422);
    assert_eq!(no_notes.body["errors"][0]["field"], "notes");
    let not_theirs = api
        .post(
            &format!("{path}/reviews/verification"),
            As::Bearer(&other_val),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        not_theirs.status, 403,
        "only the verifier who took it decides: {}",
        not_theirs.body
    );
    assert!(
        not_theirs.body["type"]
            .as_str()
            .unwrap()
            .ends_with("not-your-review")
    );
    let changes = api
        .post(&format!("{path}/reviews/verification"), As::Bearer(&val), json!({"decision": "request_changes", "notes": "Add the leakage belt to the monitoring plan."}))
        .await;
    assert_eq!(changes.status, 200, "{}", changes.body);
    assert_eq!(changes.body["status"], "changes_requested");

    let version = changes.body["version"].as_u64().unwrap();
    let stale = api
        .call(
            "PATCH",
            &path,
            As::Bearer(&dev),
            Some(json!({"version": version - 1, "description": "With the leakage belt."})),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale.body["type"]
            .as_str()
            .unwrap()
            .ends_with("edit-conflict"),
        "{}",
        stale.body
    );
    let unknown = api
        .call(
            "PATCH",
            &path,
            As::Bearer(&dev),
            Some(json!({"version": version, "colour": "green"})),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    let edited = api
        .call("PATCH", &path, As::Bearer(&dev), Some(json!({"version": version, "description": "With the leakage belt in the monitoring plan."})))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(
        edited.body["description"],
        "With the leakage belt in the monitoring plan."
    );
    assert_eq!(
        edited.body["registryProjectId"], "VCS1340",
        "fields not in the patch stay"
    );
    assert_eq!(
        api.call("POST", &format!("{path}/submit"), As::Bearer(&dev), None)
            .await
            .status,
        200
    );
    assert_eq!(
        api.call(
            "POST",
            &format!("{path}/reviews/take"),
            As::Bearer(&val),
            None
        )
        .await
        .status,
        200
    );
    let approved = api
        .post(
            &format!("{path}/reviews/verification"),
            As::Bearer(&val),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["approvedAt"], approved.body["updatedAt"]);
    // The developer was told of each of the verifier's moves, with the notes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let titles = loop {
        let got = api
            .get("/v1/notifications?limit=100", As::Bearer(&dev))
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        let items = got.body["items"].as_array().unwrap().clone();
        if items.len() >= 4 || std::time::Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let kinds: Vec<&str> = titles
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Your project is approved",
            "Your project is under review",
            "Changes requested on your project",
            "Your project is under review",
        ],
        "newest first"
    );
    assert!(
        titles[2]["body"]
            .as_str()
            .unwrap()
            .contains("Add the leakage belt to the monitoring plan."),
        "{:#}",
        titles[2]
    );
    assert!(titles.iter().all(|n| n["kind"] == "project_status_changed"));
    // Its developer does not rate it (they could buy from themselves).
    let own = api
        .post(
            &format!("{path}/ratings"),
            As::Bearer(&dev),
            json!({"stars": 5, "text": "Best project ever"}),
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(
        own.body["type"].as_str().unwrap().ends_with("own-project"),
        "{}",
        own.body
    );
    let edit_approved = api
        .call(
            "PATCH",
            &path,
            As::Bearer(&dev),
            Some(json!({"version": approved.body["version"], "name": "Renamed"})),
        )
        .await;
    assert_eq!(
        edit_approved.status, 409,
        "an approved project is not editable"
    );

    // Issuance with a real Verra serial block (Bale Mountains, VCS1340, vintage 2020).
    let serial = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1";
    let issuance = json!({"vintage": {"start": "2020-01-01", "end": "2020-12-31"}, "quantity": 425, "serialBlock": serial});
    let by_owner = api
        .post(
            &format!("{path}/issuances"),
            As::Bearer(&dev),
            issuance.clone(),
        )
        .await;
    assert_eq!(by_owner.status, 403, "{}", by_owner.body);
    let mut wrong = issuance.clone();
    wrong["quantity"] = json!(424);
    let mismatch = api
        .post(&format!("{path}/issuances"), As::Bearer(&val), wrong)
        .await;
    assert_eq!(mismatch.status, 422, "{}", mismatch.body);
    assert_eq!(mismatch.body["errors"][0]["field"], "quantity");
    let issued = api
        .post(
            &format!("{path}/issuances"),
            As::Bearer(&val),
            issuance.clone(),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    assert_eq!(issued.body["quantity"], 425);
    assert_eq!(
        issued.body["buffer"], 85,
        "20% of a forest project's credits, rounded up"
    );
    assert_eq!(issued.body["serial"], serial);
    let blocks = issued.body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (blocks[0]["status"].as_str(), blocks[0]["serial"].as_str()),
        (
            Some("issued"),
            Some("19385-941467007-941467346-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1")
        )
    );
    assert_eq!(
        (blocks[1]["status"].as_str(), blocks[1]["quantity"].as_u64()),
        (Some("buffer"), Some(85))
    );
    let twice = api
        .post(&format!("{path}/issuances"), As::Bearer(&val), issuance)
        .await;
    assert_eq!(twice.status, 409, "a serial is issued once: {}", twice.body);

    // Serial lookup: public, with the holder shown to the holder only.
    let one = "19385-941467100-941467100-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1";
    let lookup = format!("/v1/credits/lookup?serial={one}");
    let public = api.get(&lookup, As::Anonymous).await;
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(public.body["projectId"], id.as_str());
    assert_eq!(public.body["blocks"][0]["status"], "issued");
    assert_eq!(public.body["blocks"][0]["holder"], Value::Null);
    let mine = api.get(&lookup, As::Bearer(&dev)).await;
    assert!(
        mine.body["blocks"][0]["holder"]
            .as_str()
            .unwrap()
            .starts_with("USER#"),
        "{}",
        mine.body
    );
    let buffer = api
        .get(
            &format!("/v1/credits/lookup?serial={serial}"),
            As::Anonymous,
        )
        .await;
    let statuses: Vec<&str> = buffer.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["issued", "buffer"]);
    let elsewhere = api
        .get(
            "/v1/credits/lookup?serial=19385-1-5-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
            As::Anonymous,
        )
        .await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(
        api.get("/v1/credits/lookup?serial=not-a-serial", As::Anonymous)
            .await
            .status,
        422
    );

    // A listing of part of the inventory, then the public catalogue finds it.
    let batch = issued.body["id"].as_str().unwrap().to_owned();
    let listing = json!({"projectId": id, "batchId": batch, "quantity": 300,
        "unitPrice": {"amount": "12.5", "currency": "USD"}});
    let refused = api
        .post("/v1/listings", As::Bearer(&other_dev), listing.clone())
        .await;
    assert_eq!(
        refused.status, 404,
        "another developer lists nothing: {}",
        refused.body
    );
    let too_many = json!({"projectId": id, "batchId": batch, "quantity": 341,
        "unitPrice": {"amount": "12.5", "currency": "USD"}});
    let over = api.post("/v1/listings", As::Bearer(&dev), too_many).await;
    assert_eq!(
        over.status, 409,
        "the buffer is not for sale: {}",
        over.body
    );
    let bad_price = json!({"projectId": id, "batchId": batch, "quantity": 1,
        "unitPrice": {"amount": "12.5", "currency": "XAU"}});
    assert_eq!(
        api.post("/v1/listings", As::Bearer(&dev), bad_price)
            .await
            .status,
        422
    );
    let listed = api.post("/v1/listings", As::Bearer(&dev), listing).await;
    assert_eq!(listed.status, 201, "{}", listed.body);
    assert_eq!(
        listed.body["unitPrice"],
        json!({"amount": "12.50", "currency": "USD"})
    );
    assert_eq!(listed.body["available"], 300);
    let listing_path = format!("/v1/listings/{}", listed.body["id"].as_str().unwrap());
    let own = api
        .get(&format!("{path}/listings?limit=1"), As::Bearer(&dev))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(
        own.body["items"][0]["id"], listed.body["id"],
        "{}",
        own.body
    );
    assert_eq!(own.body["items"].as_array().map(Vec::len), Some(1));
    assert!(own.body["nextCursor"].is_null(), "one listing, one page");
    assert_eq!(
        api.get(&format!("{path}/listings"), As::Bearer(&buyer))
            .await
            .status,
        404,
        "a project's listings in every state are for its seller"
    );

    let search = "/v1/projects?country=ET&category=forest&standard=VCS&facets=true";
    let found = api.get(search, As::Anonymous).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["total"], 1, "{}", found.body);
    let item = &found.body["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["available"], 300);
    assert_eq!(item["vintages"], json!([2020]));
    assert_eq!(
        item["prices"][0]["min"],
        json!({"amount": "12.50", "currency": "USD"})
    );
    assert_eq!(found.body["facets"]["standard"]["VCS"], 1);
    let by_text = api.get("/v1/projects?q=bale%20mount", As::Anonymous).await;
    assert_eq!(
        by_text.body["items"][0]["id"],
        id.as_str(),
        "{}",
        by_text.body
    );
    let by_registry_id = api.get("/v1/projects?q=1340", As::Anonymous).await;
    assert_eq!(by_registry_id.body["total"], 1, "{}", by_registry_id.body);
    let elsewhere = api
        .get("/v1/projects?country=KE&category=forest", As::Anonymous)
        .await;
    assert_eq!(elsewhere.body["total"], 0);
    let rounded = api.get("/v1/projects?maxPrice=12.505", As::Anonymous).await;
    assert_eq!(
        rounded.status, 422,
        "a bound is never rounded wider: {}",
        rounded.body
    );
    assert_eq!(rounded.body["errors"][0]["field"], "maxPrice");
    let by_issuance_id = api
        .post("/v1/listings", As::Bearer(&dev), json!({"projectId": id, "issuanceId": batch, "quantity": 1, "unitPrice": {"amount": "3", "currency": "USD"}}))
        .await;
    assert_eq!(
        by_issuance_id.status, 201,
        "issuanceId names the batch too: {}",
        by_issuance_id.body
    );
    let extra = format!(
        "/v1/listings/{}",
        by_issuance_id.body["id"].as_str().unwrap()
    );
    let closed_extra = api
        .call(
            "PATCH",
            &extra,
            As::Bearer(&dev),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(closed_extra.status, 200, "{}", closed_extra.body);
    let bad = api
        .get(
            "/v1/projects?country=XX&sort=cheapest&sdgs=18",
            As::Anonymous,
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        bad.body["errors"].as_array().unwrap().len(),
        3,
        "{}",
        bad.body
    );

    // A price change shows in the next search and in the listing's history.
    let repriced = api
        .call(
            "PATCH",
            &listing_path,
            As::Bearer(&dev),
            Some(json!({"unitPrice": {"amount": "9.99", "currency": "USD"}})),
        )
        .await;
    assert_eq!(repriced.status, 200, "{}", repriced.body);
    let cheap = api
        .get("/v1/projects?maxPrice=10&currency=USD", As::Anonymous)
        .await;
    assert_eq!(
        cheap.body["items"][0]["prices"][0]["min"]["amount"], "9.99",
        "{}",
        cheap.body
    );
    let events = api
        .get(&format!("{listing_path}/history"), As::Bearer(&dev))
        .await;
    assert_eq!(
        events.body["items"][1]["kind"], "price_changed",
        "{}",
        events.body
    );
    assert_eq!(events.body["items"][1]["previousPrice"]["amount"], "12.50");
    let first = api
        .get(&format!("{listing_path}/history?limit=1"), As::Bearer(&dev))
        .await;
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("a cursor to the next page");
    let second = api
        .get(
            &format!("{listing_path}/history?limit=1&cursor={cursor}"),
            As::Bearer(&dev),
        )
        .await;
    assert_eq!(second.body["items"][0], events.body["items"][1]);
    let bad_limit = api
        .get(
            &format!("{listing_path}/history?limit=abc"),
            As::Bearer(&dev),
        )
        .await;
    assert_eq!(bad_limit.status, 422, "{}", bad_limit.body);
    let other_cursor = api
        .get(
            &format!("{path}/listings?cursor={cursor}"),
            As::Bearer(&dev),
        )
        .await;
    assert_eq!(
        other_cursor.status, 422,
        "a listing's history cursor is refused on the project's listings: {}",
        other_cursor.body
    );
    assert_eq!(
        api.get(&format!("{listing_path}/history"), As::Bearer(&buyer))
            .await
            .status,
        404
    );
    let seen = api.get(&listing_path, As::Bearer(&buyer)).await;
    assert_eq!(seen.status, 200, "an open listing is for buyers to read");
    assert!(
        seen.body.get("seller").is_none() && seen.body.get("createdBy").is_none(),
        "{}",
        seen.body
    );
    assert!(api.get(&listing_path, As::Bearer(&dev)).await.body["seller"].is_string());
    let by_buyer = api
        .call(
            "PATCH",
            &listing_path,
            As::Bearer(&buyer),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert_eq!(by_buyer.status, 404, "{}", by_buyer.body);

    // An admin records a BeZero rating; the catalogue filters on it.
    let admin = admin_token(&api).await;
    let ratings = format!("{path}/agency-ratings");
    let bezero = |grade: &str, rated_on: &str| {
        json!({"agency": "bezero", "grade": grade, "ratedOn": rated_on,
            "scope": "project", "sourceUrl": "https://bezerocarbon.com/"})
    };
    let rated_at_least = async |grade: &str| {
        let found = api
            .get(
                &format!("/v1/projects?ratingAgency=bezero&minRating={grade}"),
                As::Anonymous,
            )
            .await;
        found.body["total"].as_u64().expect("a total")
    };
    let by_dev = api
        .post(&ratings, As::Bearer(&dev), bezero("A", "2024-03-01"))
        .await;
    assert_eq!(by_dev.status, 403);
    let rated = api
        .post(&ratings, As::Bearer(&admin), bezero("A", "2024-03-01"))
        .await;
    assert_eq!(rated.status, 201, "{}", rated.body);
    assert_eq!(rated_at_least("BBB").await, 1);
    assert_eq!(rated_at_least("AA").await, 0);
    let shown = api.get(&path, As::Bearer(&dev)).await;
    assert_eq!(shown.body["agencyRatings"][0]["grade"], "A");
    // The agency's later downgrade replaces its grade in the catalogue; both stay on the project.
    let rated = api
        .post(&ratings, As::Bearer(&admin), bezero("B", "2025-01-10"))
        .await;
    assert_eq!(rated.status, 201, "{}", rated.body);
    assert_eq!(rated_at_least("BBB").await, 0);
    assert_eq!(rated_at_least("B").await, 1);
    let shown = api.get(&path, As::Bearer(&dev)).await;
    assert_eq!(
        shown.body["agencyRatings"].as_array().map(Vec::len),
        Some(2)
    );
    let dated_ahead = api
        .post(&ratings, As::Bearer(&admin), bezero("AAA", "2999-01-01"))
        .await;
    assert_eq!(dated_ahead.status, 422, "{}", dated_ahead.body);

    // Closing returns the unsold credits to inventory; the catalogue offers nothing then.
    let closed = api
        .call(
            "PATCH",
            &listing_path,
            As::Bearer(&dev),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(
        (closed.status, &closed.body["available"]),
        (200, &json!(0)),
        "{}",
        closed.body
    );
    let after = api.get(search, As::Anonymous).await;
    assert_eq!(after.body["items"][0]["available"], 0);
    let lookup = api
        .get(&format!("/v1/credits/lookup?serial={one}"), As::Anonymous)
        .await;
    assert_eq!(
        lookup.body["blocks"][0]["status"], "issued",
        "back in inventory"
    );

    let history = api.get(&format!("{path}/history"), As::Bearer(&dev)).await;
    assert_eq!(history.status, 200);
    let moves: Vec<(Value, Value)> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect();
    assert_eq!(moves.len(), 7, "{:#}", history.body);
    assert_eq!(
        moves[3],
        (json!("under_review"), json!("changes_requested"))
    );
    assert_eq!(
        history.body[3]["notes"],
        "Add the leakage belt to the monitoring plan."
    );
    assert_eq!(
        history.body[3]["actor"],
        format!("user:{val_id}"),
        "the verifier who decided"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_never_reviews_a_project_of_their_own_organisation() {
    let (running, _dir) = start_with(ADMIN).await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@forest.example", "business").await;
    let org = api.org(&owner, "Forest Co").await;
    let (_, val) = verifier(&api, "val@forest.example").await;
    api.join(&owner, &org, "val@forest.example", &val, "member")
        .await;

    let mut fields = project_fields();
    fields["orgId"] = json!(org);
    let created = api.post("/v1/projects", As::Bearer(&owner), fields).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["owner"], format!("ORG#{org}"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    let pdf = upload(&api, &owner, &id, "pdd.pdf", &real_pdf()).await;
    assert_eq!(settled(&api, &owner, &id, &pdf).await["state"], "accepted");
    let submitted = api
        .call(
            "POST",
            &format!("/v1/projects/{id}/submit"),
            As::Bearer(&owner),
            None,
        )
        .await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    let own = api
        .call(
            "POST",
            &format!("/v1/projects/{id}/reviews/take"),
            As::Bearer(&val),
            None,
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(
        own.body["type"].as_str().unwrap().ends_with("own-project"),
        "{}",
        own.body
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_read_and_draft_their_organisations_projects_within_their_scopes() {
    let (running, _dir) = start_with(ADMIN).await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@keys.example", "business").await;
    let org = api.org(&owner, "Keys Co").await;
    let (_, stranger) = api.user("owner@other.example", "business").await;
    let other_org = api.org(&stranger, "Other Co").await;
    let key = |scopes: Value| {
        let api = &api;
        let owner = owner.clone();
        let org = org.clone();
        async move {
            let created = api
                .post(
                    &format!("/v1/orgs/{org}/api-keys"),
                    As::Bearer(&owner),
                    json!({"name": "ERP", "scopes": scopes}),
                )
                .await;
            assert_eq!(created.status, 201, "{}", created.body);
            created.body["secret"].as_str().unwrap().to_owned()
        }
    };
    let writer = key(json!(["projects:read", "projects:write"])).await;
    let reader = key(json!(["projects:read"])).await;

    // A key drafts for its own organisation without naming it.
    let created = api
        .post("/v1/projects", As::ApiKey(&writer), project_fields())
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["owner"], format!("ORG#{org}"));
    let path = format!("/v1/projects/{}", created.body["id"].as_str().unwrap());
    let version = created.body["version"].clone();

    assert_eq!(api.get(&path, As::ApiKey(&reader)).await.status, 200);
    let listed = api
        .get(&format!("/v1/orgs/{org}/projects"), As::ApiKey(&reader))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(
            &format!("/v1/orgs/{other_org}/projects"),
            As::ApiKey(&reader)
        )
        .await
        .status,
        404
    );
    let patched = api
        .call(
            "PATCH",
            &path,
            As::ApiKey(&reader),
            Some(json!({"version": version, "name": "Renamed"})),
        )
        .await;
    assert_eq!(
        patched.status, 403,
        "a read-only key does not write: {}",
        patched.body
    );
    let drafted = api
        .post("/v1/projects", As::ApiKey(&reader), project_fields())
        .await;
    assert_eq!(drafted.status, 403, "{}", drafted.body);
    let mut elsewhere = project_fields();
    elsewhere["orgId"] = json!(other_org);
    assert_eq!(
        api.post("/v1/projects", As::ApiKey(&writer), elsewhere)
            .await
            .status,
        404,
        "another tenant's organisation"
    );
    assert_eq!(api.get(&path, As::Bearer(&stranger)).await.status, 404);
    let mut unknown = project_fields();
    unknown["methodology"] = json!("VM0015");
    let refused = api.post("/v1/projects", As::ApiKey(&writer), unknown).await;
    assert_eq!(
        refused.status, 422,
        "an unknown field is refused: {}",
        refused.body
    );
    assert_eq!(refused.body["errors"][0]["field"], "methodology");
    running.shutdown().await;
}
