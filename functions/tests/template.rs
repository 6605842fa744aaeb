//! template.yaml and the code agree: every function binary is deployed, and each HTTP function is
//! routed exactly the (method, path) pairs its router serves, no more and no fewer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml_ng::Value;

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).expect("template.yaml parses")
}

/// Binary name -> set of "METHOD /path" of its HttpApi events, for every serverless function.
fn deployed_functions() -> BTreeMap<String, BTreeSet<String>> {
    let template = template();
    let mut functions = BTreeMap::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary")
            .to_owned();
        let mut routes = BTreeSet::new();
        if let Some(events) = resource["Properties"]["Events"].as_mapping() {
            for (_, event) in events {
                if event["Type"].as_str() == Some("HttpApi") {
                    let method = event["Properties"]["Method"]
                        .as_str()
                        .unwrap()
                        .to_uppercase();
                    let path = event["Properties"]["Path"].as_str().unwrap();
                    routes.insert(format!("{method} {path}"));
                }
            }
        }
        assert!(
            functions.insert(binary.clone(), routes).is_none(),
            "{binary} is deployed twice"
        );
    }
    functions
}

fn binaries() -> BTreeSet<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn every_registered_function_has_a_binary_and_is_deployed_and_nothing_else_is() {
    let registered: BTreeSet<String> = amanar_app::function_names()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        binaries(),
        registered,
        "each function needs src/bin/<name>.rs (one line naming its HttpFunction)"
    );
    let deployed: BTreeSet<String> = deployed_functions().into_keys().collect();
    assert_eq!(
        deployed, registered,
        "template.yaml deploys exactly the registered functions"
    );
}

#[test]
fn each_http_binary_runs_the_function_it_is_named_after() {
    for function in amanar_app::routes::http_functions() {
        let name = function.name();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("src/bin/{name}.rs"));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            source.contains("amanar_functions::run_http(")
                && source.contains("env!(\"CARGO_BIN_NAME\")"),
            "src/bin/{name}.rs must call amanar_functions::run_http(<the function's constant>, env!(\"CARGO_BIN_NAME\")), which refuses a binary wired to another function"
        );
    }
}

#[test]
fn each_http_function_is_routed_exactly_the_routes_its_code_serves() {
    let deployed = deployed_functions();
    let mut served_anywhere = BTreeSet::new();
    for function in amanar_app::routes::http_functions() {
        let name = function.name();
        let served: BTreeSet<String> = amanar_app::routes::function_routes(&*function)
            .into_iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert_eq!(
            deployed.get(name),
            Some(&served),
            "routes of {name} in template.yaml differ from the code"
        );
        served_anywhere.extend(served);
    }
    let routed_anywhere: BTreeSet<String> = deployed.values().flatten().cloned().collect();
    assert_eq!(
        routed_anywhere, served_anywhere,
        "template.yaml routes something no HTTP function serves"
    );
    let whole_api: BTreeSet<String> = amanar_app::routes::route_table()
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        whole_api, served_anywhere,
        "the local runtime serves exactly what the functions serve"
    );
}

#[test]
fn the_edge_throttles_every_route_and_the_secret_checking_auth_routes_harder() {
    let template = template();
    let api = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::Serverless::HttpApi"))
        .expect("one HTTP API");
    let rate = |settings: &Value| settings["ThrottlingRateLimit"].as_f64();
    let default = rate(&api["Properties"]["DefaultRouteSettings"]).expect("a default rate");
    let routes = api["Properties"]["RouteSettings"]
        .as_mapping()
        .expect("route settings");
    let served = deployed_functions();
    for (route, settings) in routes {
        let route = route.as_str().unwrap();
        assert!(
            served.values().any(|r| r.contains(route)),
            "{route} is throttled but not routed"
        );
        assert!(rate(settings).unwrap() < default, "{route}");
    }
    // Every anonymous POST of the auth function that takes a password or a code.
    for route in &served["api-auth"] {
        let checks_a_secret = route.starts_with("POST ")
            && !route.ends_with("/refresh")
            && !route.ends_with("/logout");
        if checks_a_secret {
            assert!(
                routes.contains_key(Value::from(route.as_str())),
                "{route} has no throttling of its own"
            );
        }
    }
}

#[test]
fn public_read_only_functions_write_nothing_but_rate_limit_windows() {
    let template = template();
    let mut checked = Vec::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        let public_reads = !events.is_empty()
            && events.values().all(|e| {
                e["Type"].as_str() == Some("HttpApi")
                    && e["Properties"]["Method"].as_str() == Some("GET")
                    && e["Properties"]["Auth"]["Authorizer"].as_str() == Some("NONE")
            });
        if !public_reads {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        for policy in resource["Properties"]["Policies"].as_sequence().unwrap() {
            for statement in policy["Statement"].as_sequence().unwrap() {
                let actions: Vec<&str> = match &statement["Action"] {
                    Value::String(one) => vec![one.as_str()],
                    many => many
                        .as_sequence()
                        .expect("Action is a string or a list")
                        .iter()
                        .filter_map(|a| a.as_str())
                        .collect(),
                };
                let leading: Vec<&str> = statement["Condition"]["ForAllValues:StringLike"]
                    ["dynamodb:LeadingKeys"]
                    .as_sequence()
                    .or(statement["Condition"]["ForAllValues:StringEquals"]
                        ["dynamodb:LeadingKeys"]
                        .as_sequence())
                    .map(|keys| keys.iter().filter_map(|k| k.as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    !leading.is_empty(),
                    "{binary}: {:?} is not limited by dynamodb:LeadingKeys",
                    statement["Sid"]
                );
                let writes = actions.iter().any(|a| {
                    *a == "*"
                        || a.starts_with("dynamodb:")
                            && (a.contains('*')
                                || ["Put", "Update", "Delete", "BatchWrite", "TransactWrite"]
                                    .iter()
                                    .any(|w| a.contains(w)))
                });
                if writes {
                    assert_eq!(
                        leading,
                        ["RATE#*"],
                        "{binary} writes beyond the rate windows"
                    );
                }
            }
        }
        checked.push(binary.to_owned());
    }
    checked.sort();
    assert_eq!(checked, ["api-docs", "api-emission-factors", "api-health"]);
}
