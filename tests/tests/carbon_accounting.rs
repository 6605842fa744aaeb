//! Carbon accounting through the local runtime over HTTP: find a factor, estimate with it, and
//! estimate a batch of 100 with a bad item among them.

use amanar_journeys::{Api, As, start};
use serde_json::{Value, json};

async fn get(api: &Api, path: &str) -> (u16, Value) {
    let answer = api.get(path, As::Anonymous).await;
    (answer.status, answer.body)
}

/// Estimates need a signed-in user (or an API key with `estimates:write`).
async fn post(api: &Api, token: &str, path: &str, body: Value) -> (u16, Value) {
    let answer = api.post(path, As::Bearer(token), body).await;
    (answer.status, answer.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_a_factor_then_estimate_with_it() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, token) = api.user("estimator@example.com", "individual").await;

    let (status, page) = get(
        &api,
        "/v1/emission-factors?q=natural+gas&source=desnz&region=GB&unitType=energy&scope=1",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let gross = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["sourceId"] == "1_100_1004_6_1")
        .unwrap_or_else(|| panic!("natural gas (gross CV) is found: {page:#}"))
        .clone();
    assert_eq!(gross["calorificBasis"], "gross");
    assert_eq!(gross["unit"], "kWh");
    assert_eq!(gross["co2eKg"], "0.182928926174497");
    assert_eq!(
        gross["sourceDataset"]["licence"],
        "Open Government Licence v3.0"
    );

    let id = gross["id"].as_str().unwrap();
    let (status, one) = get(&api, &format!("/v1/emission-factors/{id}")).await;
    assert_eq!((status, &one["id"]), (200, &gross["id"]));
    let (status, by_source_id) = get(&api, "/v1/emission-factors?sourceId=1_100_1004_6_1").await;
    assert_eq!(status, 200);
    assert_eq!(by_source_id["items"][0]["id"], gross["id"]);

    let (status, estimate) = post(
        &api,
        &token,
        "/v1/estimates",
        json!({"factorId": id, "amount": "12.5", "unit": "MWh"}),
    )
    .await;
    assert_eq!(status, 200, "{estimate}");
    assert_eq!(estimate["co2eKg"], "2286.6115771812125");
    assert_eq!(estimate["factor"]["sourceId"], "1_100_1004_6_1");
    assert_eq!(estimate["calculation"]["convertedAmount"], "12500");
    assert_eq!(estimate["calculation"]["gwpSet"], "AR5");
    assert_eq!(estimate["calculation"]["exact"], true);
    assert_eq!(estimate["gases"]["co2"]["co2eKg"], "2282");

    let (status, by_activity) = post(&api, &token, "/v1/estimates",
            json!({"activityId": gross["activityId"], "region": "GB", "year": 2023, "amount": "12500", "unit": "kWh"}),
        )
        .await;
    assert_eq!(status, 200, "{by_activity}");
    assert_eq!(by_activity["co2eKg"], estimate["co2eKg"]);

    let (status, problem) = post(
        &api,
        &token,
        "/v1/estimates",
        json!({"factorId": id, "amount": "5", "unit": "litres"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "unit");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("accepts: Wh, kWh, MWh"), "{message}");

    let (status, problem) = post(
        &api,
        &token,
        "/v1/estimates",
        json!({"factorId": id, "amount": 5, "unit": "kWh"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "amount");

    let (status, _) = get(&api, "/v1/emission-factors/ef_0000000000000000").await;
    assert_eq!(status, 404);
    let (status, problem) = get(&api, "/v1/emission-factors?unitType=weight").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("unitType"))
    );

    let (status, units) = get(&api, "/v1/units").await;
    assert_eq!(status, 200);
    let energy = units["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["unitType"] == "energy")
        .unwrap();
    assert_eq!(energy["baseUnit"], "J");
    assert!(
        energy["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["symbol"] == "MMBtu")
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_hundred_keeps_its_order_and_reports_the_bad_item_alone() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, token) = api.user("estimator@example.com", "individual").await;
    let (_, page) = get(&api, "/v1/emission-factors?sourceId=7_400_4000_5_1").await;
    let electricity = page["items"][0]["id"].as_str().unwrap().to_owned();

    let items: Vec<Value> = (1..=100)
        .map(|i| {
            if i == 42 {
                json!({"factorId": electricity, "amount": "1", "unit": "kg"})
            } else {
                json!({"factorId": electricity, "amount": i.to_string(), "unit": "kWh"})
            }
        })
        .collect();
    let (status, batch) = post(
        &api,
        &token,
        "/v1/estimates/batch",
        json!({ "items": items }),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(
        (batch["succeeded"].as_u64(), batch["failed"].as_u64()),
        (Some(99), Some(1))
    );
    let results = batch["items"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for (index, item) in results.iter().enumerate() {
        assert_eq!(item["index"], index);
    }
    // 0.207074288590604 kg CO2e per kWh × 7 kWh, exactly.
    assert_eq!(results[6]["estimate"]["co2eKg"], "1.449520020134228");
    assert_eq!(results[41]["status"], 422);
    assert_eq!(results[41]["error"]["errors"][0]["field"], "items[41].unit");
    // (1 + … + 100 − 42) kWh × 0.207074288590604.
    assert_eq!(batch["totalCo2eKg"], "1037.028037261744832");

    let too_many: Vec<Value> = (0..101).map(|_| json!({})).collect();
    let (status, problem) = post(
        &api,
        &token,
        "/v1/estimates/batch",
        json!({ "items": too_many }),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("items"))
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_too_large_to_calculate_is_a_422_on_amount_not_a_crash() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, token) = api.user("estimator@example.com", "individual").await;
    let (status, problem) = post(&api, &token,
        "/v1/estimates",
        json!({"activityId": "electricity-grid", "region": "GB", "amount": "79228162514264337593543950335", "unit": "GWh"}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "amount");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    let (status, _) = get(&api, "/v1/health").await;
    assert_eq!(status, 200, "the runtime is still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimates_need_a_user_or_an_api_key_with_the_estimates_scope() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let one =
        json!({"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kWh"});
    let anonymous = api.post("/v1/estimates", As::Anonymous, one.clone()).await;
    assert_eq!(anonymous.status, 401);
    let batch = json!({"items": [one.clone()]});
    assert_eq!(
        api.post("/v1/estimates/batch", As::Anonymous, batch.clone())
            .await
            .status,
        401
    );

    let (_, owner) = api.user("owner@acme.example", "business").await;
    let org = api.org(&owner, "Acme Ltd").await;
    let key = |scopes: Value| {
        let (api, owner, org) = (&api, &owner, &org);
        async move {
            let created = api
                .post(
                    &format!("/v1/orgs/{org}/api-keys"),
                    As::Bearer(owner),
                    json!({"name": "ERP", "scopes": scopes}),
                )
                .await;
            assert_eq!(created.status, 201, "{}", created.body);
            created.body["secret"].as_str().unwrap().to_owned()
        }
    };
    let reader = key(json!(["footprints:read"])).await;
    let refused = api
        .post("/v1/estimates", As::ApiKey(&reader), one.clone())
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body["type"]
            .as_str()
            .unwrap()
            .ends_with("/insufficient-scope")
    );
    let estimator = key(json!(["estimates:write"])).await;
    let estimated = api.post("/v1/estimates", As::ApiKey(&estimator), one).await;
    assert_eq!(estimated.status, 200, "{}", estimated.body);
    assert_eq!(
        estimated.header("ratelimit-limit"),
        "1200",
        "keys are rate limited"
    );
    let batched = api
        .post("/v1/estimates/batch", As::ApiKey(&estimator), batch)
        .await;
    assert_eq!(batched.status, 200);
}
