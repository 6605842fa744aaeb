//! Activity imports through the local runtime: an organisation declares a CSV, uploads it to the
//! signed URL, and the upload check and the jobs worker turn it into a footprint, or report every
//! bad row and import nothing.

use std::time::{Duration, Instant};

use amanar_journeys::{Api, As, start};
use serde_json::{Value, json};

const YEAR_2024: &str = r#"{"start": "2024-01-01", "end": "2024-12-31"}"#;

/// Declares a file, uploads it with the returned request, and returns the import's URL path.
async fn import(api: &Api, token: &str, org: &str, file: &[u8], period: &str) -> String {
    let declared = api
        .post(
            &format!("/v1/orgs/{org}/activity-imports"),
            As::Bearer(token),
            json!({"filename": "activities.csv", "size": file.len(), "period": serde_json::from_str::<Value>(period).unwrap()}),
        )
        .await;
    assert_eq!(declared.status, 202, "{:#}", declared.body);
    assert_eq!(declared.body["status"], "awaiting_upload");
    api.send_upload(&declared.body["upload"], file).await;
    declared.header("location").to_owned()
}

/// Polls an import until it is finished.
async fn finished(api: &Api, token: &str, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let import = api.get(location, As::Bearer(token)).await;
        assert_eq!(import.status, 200, "{}", import.body);
        if ["completed", "failed", "rejected"].contains(&import.body["status"].as_str().unwrap()) {
            return import.body;
        }
        assert!(Instant::now() < deadline, "still {:#}", import.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_a_bad_row_imports_nothing_and_a_good_file_becomes_the_footprint() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@acme.example", "business").await;
    let org = api.org(&owner, "Acme Ltd").await;

    let bad = b"activityId,region,amount,unit,label\n\
                fuel-natural_gas,GB,120000,kWh,Boiler\n\
                electricity-grid,GB,250,kg,Office\n\
                fuel-diesel,GB,lots,l,Vans\n";
    let location = import(&api, &owner, &org, bad, YEAR_2024).await;
    let failed = finished(&api, &owner, &location).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["errorCount"], 2);
    assert_eq!(failed["errors"][0]["row"], 3);
    assert_eq!(failed["errors"][0]["field"], "unit");
    assert!(
        failed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("kWh"),
        "names the accepted units: {failed:#}"
    );
    assert_eq!(failed["errors"][1]["row"], 4);
    assert_eq!(failed["errors"][1]["field"], "amount");
    assert_eq!(failed["footprintId"], Value::Null);
    assert_eq!(
        api.get(&format!("/v1/footprints?orgId={org}"), As::Bearer(&owner))
            .await
            .body["items"],
        json!([]),
        "a malformed file never produces a partial footprint"
    );

    let good = b"\xEF\xBB\xBFActivity ID,Region,Amount,Unit,Label,Supplier factor\r\n\
                 fuel-natural_gas,GB,120000,kWh,Boiler,\r\n\
                 electricity-grid,GB,250000,kWh,Office,0.02\r\n\
                 fuel-diesel,GB,8000,l,Vans,\r\n";
    let location = import(&api, &owner, &org, good, YEAR_2024).await;
    let completed = finished(&api, &owner, &location).await;
    assert_eq!(completed["status"], "completed", "{completed:#}");
    assert_eq!(completed["progress"]["rowsProcessed"], 3);
    assert_eq!(
        completed["progress"]["bytesProcessed"],
        completed["progress"]["bytesTotal"]
    );
    let footprint_id = completed["footprintId"].as_str().unwrap();
    let footprint = api
        .get(
            &format!("/v1/footprints/{footprint_id}"),
            As::Bearer(&owner),
        )
        .await;
    assert_eq!(footprint.status, 200);
    let footprint = footprint.body;
    assert_eq!(footprint["calculator"], "import");
    assert_eq!(footprint["importId"], completed["id"]);
    // 120000 × 0.182928926174497 + 8000 × 2.51206388456376 (scope 1); 250000 × 0.207074288590604
    assert_eq!(footprint["totals"]["byScope"]["1"], "42047.98221744972");
    assert_eq!(footprint["totals"]["byScope"]["2"], "51768.572147651");
    assert_eq!(footprint["totals"]["scope2"]["marketBasedCo2eKg"], "5000");
    let (status, lines) = api
        .fetch_text(footprint["lines"]["csvUrl"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    let rows: Vec<&str> = lines.lines().collect();
    assert_eq!(rows.len(), 4);
    assert!(
        rows[3].starts_with("4,Vans,Fuels,1,,20096.51107651008,,"),
        "{lines}"
    );

    // The list shows both imports, newest first.
    let listed = api
        .get(
            &format!("/v1/orgs/{org}/activity-imports"),
            As::Bearer(&owner),
        )
        .await;
    let statuses: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "failed"]);

    // The period is now taken: another import for it fails as a whole and changes nothing.
    let again = import(&api, &owner, &org, good, YEAR_2024).await;
    let refused = finished(&api, &owner, &again).await;
    assert_eq!(refused["status"], "failed");
    assert!(
        refused["reason"].as_str().unwrap().contains(footprint_id),
        "{refused:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_fails_its_upload_check_is_rejected_and_only_members_import() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@acme.example", "business").await;
    let (_, viewer) = api.user("viewer@acme.example", "business").await;
    let (_, outsider) = api.user("someone@other.example", "business").await;
    let org = api.org(&owner, "Acme Ltd").await;
    api.join(&owner, &org, "viewer@acme.example", &viewer, "viewer")
        .await;

    let not_text = b"activityId,amount,unit\n\xff\xfe,1,kWh\n";
    let location = import(&api, &owner, &org, not_text, YEAR_2024).await;
    let rejected = finished(&api, &owner, &location).await;
    assert_eq!(rejected["status"], "rejected");
    assert!(
        rejected["reason"].as_str().unwrap().contains("UTF-8"),
        "{rejected:#}"
    );

    let declare = json!({"filename": "a.csv", "size": 10, "period": {"start": "2024-01-01", "end": "2024-12-31"}});
    let path = format!("/v1/orgs/{org}/activity-imports");
    assert_eq!(
        api.post(&path, As::Bearer(&viewer), declare.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        api.post(&path, As::Bearer(&outsider), declare.clone())
            .await
            .status,
        404
    );
    assert_eq!(api.get(&location, As::Bearer(&outsider)).await.status, 404);
    assert_eq!(api.get(&location, As::Bearer(&viewer)).await.status, 200);
    let too_long = json!({"filename": "a.csv", "size": 10, "period": {"start": "2024-01-01", "end": "2025-06-30"}});
    let refused = api.post(&path, As::Bearer(&owner), too_long).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.body["errors"][0]["field"], "period");
    let too_big = json!({"filename": "a.csv", "size": 26 * 1024 * 1024, "period": {"start": "2024-01-01", "end": "2024-12-31"}});
    let refused = api.post(&path, As::Bearer(&owner), too_big).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.body["errors"][0]["field"], "size");
}
