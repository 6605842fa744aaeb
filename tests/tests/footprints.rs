//! Footprints through the local runtime over HTTP: a person's footprint from the calculator and
//! its history, an organisation's scopes from activity entries (with market-based Scope 2), who may
//! see and change them, and corrections that never double count a period.

use amanar_journeys::{Api, As, start};
use serde_json::{Value, json};

fn year(y: i32) -> Value {
    json!({"start": format!("{y}-01-01"), "end": format!("{y}-12-31")})
}

fn category<'a>(footprint: &'a Value, name: &str) -> &'a Value {
    footprint["totals"]["byCategory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == name)
        .unwrap_or_else(|| panic!("category {name} in {footprint:#}"))
}

fn gb_answers() -> Value {
    json!({
        "region": "GB",
        "home": {
            "householdSize": 2,
            "electricity": {"amount": "2700", "unit": "kWh"},
            "fuels": [{"fuel": "natural_gas", "amount": "11500", "unit": "kWh"}]
        },
        "vehicles": [{"size": "medium", "fuel": "petrol", "distance": {"amount": "12000", "unit": "km"}}],
        "flights": [{"distance": {"amount": "5500", "unit": "km"}, "class": "economy", "returnTrip": true}],
        "publicTransport": [{"mode": "rail", "distance": {"amount": "1500", "unit": "km"}}],
        "diet": [{"category": "red_meat", "spend": {"amount": "600", "currency": "USD"}}],
        "goodsAndServices": [{"category": "clothing", "spend": {"amount": "800", "currency": "USD"}}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_calculates_a_footprint_with_the_calculator_and_follows_it_over_the_years() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (user_id, token) = api.user("ada@example.com", "individual").await;
    let me = As::Bearer(&token);

    let created = api
        .post(
            "/v1/footprints",
            me,
            json!({"period": year(2024), "name": "My 2024", "personal": gb_answers()}),
        )
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let footprint = &created.body;
    let id = footprint["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("location"), format!("/v1/footprints/{id}"));
    assert_eq!(footprint["userId"], user_id.as_str());
    assert_eq!(footprint["calculator"], "personal");
    // Hand-computed from the DESNZ 2023 and USEEIO v1.2 rows (METHODOLOGY.md):
    //   home: (2700 × 0.207074288590604 + 2700 × 0.017915111409396 + 11500 × 0.182928926174497) / 2
    //       = 279.5502895973154 + 24.1854004026846 + 1051.84132550335775 = 1355.57701550335775
    //   car (medium, petrol, 4_301_3054_4_1): 12000 × 0.178188534228188 = 2138.262410738256
    //   flights (long-haul economy with RF, 21_316_3170_11_1): 2 × 5500 × 0.200108280536913
    //       = 2201.191085906043
    //   rail (25_315_3147_11_1): 1500 × 0.0354629637583893 = 53.19444563758395
    //   red meat (NAICS 311611): 600 × 1.279 = 767.4; clothing (NAICS 315280): 800 × 0.145 = 116
    let totals = &footprint["totals"];
    assert_eq!(totals["co2eKg"], "6631.6249577852407");
    assert_eq!(totals["byScope"]["1"], "3190.10373624161375");
    assert_eq!(totals["byScope"]["2"], "279.5502895973154");
    assert_eq!(totals["byScope"]["3"], "3161.97093194631155");
    assert_eq!(
        category(footprint, "home_energy")["co2eKg"],
        "1355.57701550335775"
    );
    assert_eq!(category(footprint, "home_energy")["lineCount"], 3);
    assert_eq!(
        category(footprint, "flights")["co2eKg"],
        "2201.191085906043"
    );
    assert_eq!(category(footprint, "diet")["co2eKg"], "767.4");
    assert_eq!(totals["exact"], true);
    assert_eq!(footprint["lines"]["count"], 8);

    // Every line is there to check, with its factor and calculation.
    let (status, csv) = api
        .fetch_text(footprint["lines"]["csvUrl"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 9, "{csv}");
    assert!(rows[0].starts_with("line,label,category,scope,scope3Category,co2eKg"));
    assert!(
        rows.iter().any(|r| r
            .contains("Home electricity,home_energy,2,,279.5502895973154,279.5502895973154,")
            && r.contains(
                ",7_400_4000_5_1,GB,2023,2700,kWh,2700,kWh,0.207074288590604,AR5,2,true"
            )),
        "{csv}"
    );

    // Another year, then the history, newest first or oldest first.
    let next = api
        .post(
            "/v1/footprints",
            me,
            json!({"period": year(2025), "personal": {"region": "GB", "home": {"electricity": {"amount": "2000", "unit": "kWh"}}}}),
        )
        .await;
    assert_eq!(next.status, 201, "{:#}", next.body);
    let next_id = next.body["id"].as_str().unwrap().to_owned();
    let history = api.get("/v1/footprints", me).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let periods: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["period"]["start"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2025-01-01", "2024-01-01"]);
    let oldest_first = api.get("/v1/footprints?order=asc&limit=1", me).await;
    assert_eq!(oldest_first.body["items"][0]["id"], id.as_str());
    let cursor = oldest_first.body["nextCursor"].as_str().unwrap();
    let second = api
        .get(
            &format!("/v1/footprints?order=asc&limit=1&cursor={cursor}"),
            me,
        )
        .await;
    assert_eq!(second.body["items"][0]["id"], next_id.as_str());
    let only_2025 = api.get("/v1/footprints?from=2025-01-01", me).await;
    assert_eq!(only_2025.body["items"].as_array().unwrap().len(), 1);

    // A period is counted once: an overlapping footprint is refused, a correction replaces.
    let overlap = api
        .post(
            "/v1/footprints",
            me,
            json!({"period": {"start": "2025-06-01", "end": "2025-06-30"}, "personal": {"region": "GB", "home": {"electricity": {"amount": "1", "unit": "kWh"}}}}),
        )
        .await;
    assert_eq!(overlap.status, 409, "{}", overlap.body);
    assert!(
        overlap.body["type"]
            .as_str()
            .unwrap()
            .ends_with("/period-overlap")
    );
    assert!(overlap.body["detail"].as_str().unwrap().contains(&next_id));
    let corrected = api
        .post(
            "/v1/footprints",
            me,
            json!({"period": year(2025), "replaces": next_id, "personal": {"region": "GB", "home": {"electricity": {"amount": "2100", "unit": "kWh"}}}}),
        )
        .await;
    assert_eq!(corrected.status, 201, "{}", corrected.body);
    let corrected_id = corrected.body["id"].as_str().unwrap();
    let old = api.get(&format!("/v1/footprints/{next_id}"), me).await;
    assert_eq!(old.body["supersededBy"], corrected_id);
    let history = api.get("/v1/footprints", me).await;
    let ids: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [corrected_id, id.as_str()]);

    // Nobody else sees it.
    let (_, other) = api.user("bob@example.com", "individual").await;
    assert_eq!(
        api.get(&format!("/v1/footprints/{id}"), As::Bearer(&other))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get("/v1/footprints", As::Bearer(&other)).await.body["items"],
        json!([])
    );
    assert_eq!(api.get("/v1/footprints", As::Anonymous).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calculator_uses_epa_factors_and_the_egrid_subregion_in_the_us() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, token) = api.user("sam@example.com", "individual").await;
    let created = api
        .post(
            "/v1/footprints",
            As::Bearer(&token),
            json!({"period": year(2024), "personal": {
                "region": "US-CAMX",
                "home": {"electricity": {"amount": "6000", "unit": "kWh"}, "fuels": [{"fuel": "natural_gas", "amount": "500", "unit": "therm"}]},
                "vehicles": [{"distance": {"amount": "10000", "unit": "mi"}}],
                "flights": [{"distance": {"amount": "2500", "unit": "mi"}}]
            }}),
        )
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    // eGRID2022 CAMX 226.49817481291 kg/MWh × 6 MWh = 1358.98904887746
    // natural gas 53.1145 kg/MMBtu × 50 MMBtu (500 therms) = 2655.725
    // passenger car 0.17620827819307174279 kg/mi × 10000 mi = 1762.0827819307174279
    // long haul (>= 2300 mi) 0.163946770538854937596 kg/passenger-mile × 2500 = 409.86692634713734399
    assert_eq!(created.body["totals"]["co2eKg"], "6186.66375715531477189");
    assert_eq!(created.body["totals"]["gwpSets"], json!(["AR5"]));

    let refused = api
        .post(
            "/v1/footprints",
            As::Bearer(&token),
            json!({"period": year(2023), "personal": {
                "region": "US",
                "flights": [{"distance": {"amount": "300", "unit": "km"}, "class": "business"}],
                "diet": [{"category": "caviar", "spend": {"amount": "10", "currency": "USD"}}],
                "goodsAndServices": [{"category": "clothing", "spend": {"amount": "10", "currency": "EUR"}}]
            }}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "personal.flights[0].class",
            "personal.diet[0].category",
            "personal.goodsAndServices[0].spend.currency"
        ]
    );
    let unsupported = api
        .post(
            "/v1/footprints",
            As::Bearer(&token),
            json!({"period": year(2023), "personal": {"region": "FR", "home": {"electricity": {"amount": "1", "unit": "kWh"}}}}),
        )
        .await;
    assert_eq!(unsupported.status, 422);
    assert_eq!(unsupported.body["errors"][0]["field"], "personal.region");
    let negative = api
        .post(
            "/v1/footprints",
            As::Bearer(&token),
            json!({"period": year(2023), "personal": {"region": "GB",
                "flights": [{"distance": {"amount": "-5", "unit": "km"}}],
                "publicTransport": [{"mode": "bus", "distance": {"amount": "10", "unit": "kWh"}}]}}),
        )
        .await;
    assert_eq!(negative.status, 422, "{}", negative.body);
    assert_eq!(
        negative.body["errors"][0]["field"],
        "personal.publicTransport[0].distance.unit"
    );
    let negative = api
        .post(
            "/v1/footprints",
            As::Bearer(&token),
            json!({"period": year(2023), "personal": {"region": "GB",
                "flights": [{"distance": {"amount": "-5", "unit": "km"}}]}}),
        )
        .await;
    assert_eq!(negative.status, 422, "{}", negative.body);
    assert_eq!(
        negative.body["errors"][0]["field"],
        "personal.flights[0].distance.amount"
    );
    assert_eq!(
        api.get("/v1/footprints", As::Bearer(&token)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "refused footprints save nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_reports_its_scopes_from_entries_with_market_based_scope_2() {
    let (running, _dir) = start().await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@acme.example", "business").await;
    let (_, viewer) = api.user("viewer@acme.example", "business").await;
    let (_, outsider) = api.user("someone@other.example", "business").await;
    let org = api.org(&owner, "Acme Ltd").await;
    api.join(&owner, &org, "viewer@acme.example", &viewer, "viewer")
        .await;

    let entries = json!([
        {"label": "Head office boiler", "activityId": "fuel-natural_gas", "region": "GB", "amount": "120000", "unit": "kWh"},
        {"label": "Head office power", "activityId": "electricity-grid", "region": "GB", "amount": "250", "unit": "MWh",
         "supplierFactor": {"co2eKg": "0.02", "unit": "kWh"}},
        {"label": "Warehouse power", "activityId": "electricity-grid", "region": "US-CAMX", "amount": "400000", "unit": "kWh"},
        {"label": "Staff commuting by rail", "activityId": "business_travel_land-rail-national_rail", "region": "GB",
         "amount": "50000", "unit": "passenger.km", "scope3Category": 7},
        {"label": "IT services", "activityId": "useeio-naics_541511", "amount": "250000", "unit": "USD", "category": "IT"}
    ]);
    let created = api
        .post(
            "/v1/footprints",
            As::Bearer(&owner),
            json!({"orgId": org, "period": year(2025), "entries": entries}),
        )
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let totals = &created.body["totals"];
    // Scope 1: 120000 × 0.182928926174497 = 21951.47114093964
    assert_eq!(totals["byScope"]["1"], "21951.47114093964");
    // Scope 2, location-based: 250000 × 0.207074288590604 + 400 × 226.49817481291
    //   = 51768.572147651 + 90599.269925164 = 142367.842072815
    assert_eq!(totals["byScope"]["2"], "142367.842072815");
    assert_eq!(
        totals["scope2"],
        json!({
            "locationBasedCo2eKg": "142367.842072815",
            // 250000 kWh × 0.02 (supplier) + 90599.269925164 (no supplier factor: grid average)
            "marketBasedCo2eKg": "95599.269925164",
            "linesWithSupplierFactor": 1,
            "linesWithoutSupplierFactor": 1
        })
    );
    let scope3: Vec<u64> = totals["byScope3Category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_u64().unwrap())
        .collect();
    assert_eq!(
        scope3,
        [1, 7],
        "IT spend is category 1, commuting category 7"
    );
    assert_eq!(category(&created.body, "IT")["lineCount"], 1);
    assert_eq!(created.body["orgId"], org.as_str());
    assert_eq!(created.body["calculator"], "entries");

    // A bad entry is named, and nothing is saved.
    let refused = api
        .post(
            "/v1/footprints",
            As::Bearer(&owner),
            json!({"orgId": org, "period": year(2024), "entries": [
                {"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kWh"},
                {"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kg CO2"},
                {"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kWh", "supplierFactor": {"co2eKg": "0", "unit": "kWh"}}
            ]}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["entries[1].unit", "entries[2].supplierFactor"]);
    let history = api
        .get(&format!("/v1/footprints?orgId={org}"), As::Bearer(&viewer))
        .await;
    assert_eq!(history.status, 200);
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);

    // Viewers read but do not write; other tenants see nothing.
    let by_viewer = api
        .post(
            "/v1/footprints",
            As::Bearer(&viewer),
            json!({"orgId": org, "period": year(2023), "entries": [{"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kWh"}]}),
        )
        .await;
    assert_eq!(by_viewer.status, 403, "{}", by_viewer.body);
    let id = created.body["id"].as_str().unwrap();
    for path in [
        format!("/v1/footprints/{id}"),
        format!("/v1/footprints?orgId={org}"),
    ] {
        assert_eq!(
            api.get(&path, As::Bearer(&outsider)).await.status,
            404,
            "{path}"
        );
    }

    // An API key reads within its scopes.
    let key = api
        .post(
            &format!("/v1/orgs/{org}/api-keys"),
            As::Bearer(&owner),
            json!({"name": "ERP", "scopes": ["footprints:read"]}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let secret = key.body["secret"].as_str().unwrap();
    let listed = api.get("/v1/footprints", As::ApiKey(secret)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], id);
    let written = api
        .post(
            "/v1/footprints",
            As::ApiKey(secret),
            json!({"period": year(2022), "entries": [{"activityId": "fuel-natural_gas", "region": "GB", "amount": "1", "unit": "kWh"}]}),
        )
        .await;
    assert_eq!(written.status, 403, "{}", written.body);
    assert!(
        written.body["type"]
            .as_str()
            .unwrap()
            .ends_with("/insufficient-scope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_footprints_for_one_period_save_exactly_one() {
    let (running, _dir) = start().await;
    let api = std::sync::Arc::new(Api::new(&running));
    let (_, token) = api.user("race@example.com", "individual").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (api, token) = (api.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            api.post(
                "/v1/footprints",
                As::Bearer(&token),
                json!({"period": {"start": "2025-01-01", "end": format!("2025-0{}-28", i % 9 + 1)},
                       "personal": {"region": "GB", "home": {"electricity": {"amount": "100", "unit": "kWh"}}}}),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let history = api.get("/v1/footprints", As::Bearer(&token)).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
}
