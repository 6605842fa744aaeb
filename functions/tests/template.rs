//! template.yaml and the code agree: every function binary is deployed (built by the Makefile
//! target `sam build` calls for it), and each HTTP function is routed exactly the (method, path)
//! pairs its router serves, no more and no fewer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml_ng::Value;

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).expect("template.yaml parses")
}

fn makefile() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Makefile");
    std::fs::read_to_string(path).unwrap()
}

/// Logical id -> binary, from the Makefile's `build-<LogicalId>: ; $(call bootstrap,<binary>)` lines.
fn makefile_targets() -> BTreeMap<String, String> {
    let form = "build-<LogicalId>: ; $(call bootstrap,<binary>)";
    let mut targets = BTreeMap::new();
    for line in makefile().lines() {
        let Some(rest) = line.trim_start().strip_prefix("build-") else {
            continue;
        };
        let parsed = rest
            .split_once(": ; $(call bootstrap,")
            .and_then(|(id, binary)| {
                let binary = binary.trim_end().strip_suffix(')')?;
                let plain = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                };
                (plain(id) && plain(binary)).then_some((id, binary))
            });
        let (id, binary) =
            parsed.unwrap_or_else(|| panic!("Makefile: {line:?} is not of the form {form}"));
        assert!(
            targets.insert(id.to_owned(), binary.to_owned()).is_none(),
            "build-{id} appears twice in the Makefile"
        );
    }
    targets
}

/// Every function resource of the template, with its logical id.
fn functions(template: &Value) -> impl Iterator<Item = (&str, &Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, resource)| (id.as_str().unwrap(), resource))
}

/// What `sam build` does for one function, read from make itself.
struct SamBuild {
    /// The binary its target copies as the bootstrap.
    binary: String,
    /// `make -n build-<LogicalId>`: the commands make would run.
    recipe: Vec<String>,
}

/// What `make -n build-<LogicalId>` prints, called as SAM calls it (no variables but
/// ARTIFACTS_DIR), so whatever make would really do is what is checked.
fn make_dry_run(id: &str) -> Vec<String> {
    let output = std::process::Command::new("make")
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["--no-print-directory", "-n", &format!("build-{id}")])
        .env("ARTIFACTS_DIR", "/artifacts")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .expect("make is installed (infra/test.sh checks)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "make -n build-{id}: {stderr}"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Logical id -> what `sam build` does for it, for every function of the template: each is built
/// by the Makefile, through the target its line names, and the Makefile has no other target.
/// Make runs once per function for all the tests of this file.
fn sam_builds() -> &'static BTreeMap<String, SamBuild> {
    static BUILDS: std::sync::LazyLock<BTreeMap<String, SamBuild>> =
        std::sync::LazyLock::new(|| {
            let template = template();
            let targets = makefile_targets();
            let mut builds = BTreeMap::new();
            for (id, resource) in functions(&template) {
                assert_eq!(
                    resource["Metadata"]["BuildMethod"].as_str(),
                    Some("makefile"),
                    "{id} is built by the Makefile"
                );
                let listed = targets.get(id).unwrap_or_else(|| {
                    panic!(
                        "the Makefile has no target for {id}, which sam build calls: add the \
                         line `build-{id}: ; $(call bootstrap,<binary>)`"
                    )
                });
                let recipe = make_dry_run(id);
                // `... && cp <target>/lambda/<binary>/bootstrap "/artifacts/bootstrap"'`
                let copied = recipe
                    .iter()
                    .find_map(|l| {
                        let (_, cp) = l.split_once("cp ")?;
                        cp.split_once(" \"/artifacts/bootstrap\"")
                            .map(|(from, _)| from)
                    })
                    .unwrap_or_else(|| panic!("build-{id} copies a bootstrap: {recipe:#?}"));
                let binary = copied
                    .strip_suffix("/bootstrap")
                    .and_then(|dir| dir.rsplit('/').next())
                    .unwrap_or_else(|| {
                        panic!("build-{id} copies <dir>/<binary>/bootstrap: {copied}")
                    })
                    .to_owned();
                assert_eq!(&binary, listed, "build-{id} runs what its line says");
                builds.insert(id.to_owned(), SamBuild { binary, recipe });
            }
            let stale: Vec<&String> = targets
                .keys()
                .filter(|t| !builds.contains_key(*t))
                .collect();
            assert!(
                stale.is_empty(),
                "Makefile targets without a function: {stale:?}"
            );
            builds
        });
    &BUILDS
}

/// Binary name -> set of "METHOD /path" of its HttpApi events, for every serverless function.
fn deployed_functions() -> BTreeMap<String, BTreeSet<String>> {
    let template = template();
    let mut deployed = BTreeMap::new();
    for (id, resource) in functions(&template) {
        let binary = &sam_builds()[id].binary;
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
            deployed.insert(binary.clone(), routes).is_none(),
            "{binary} is deployed twice"
        );
    }
    deployed
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

/// A function triggered by a queue, a bucket or a schedule is deployed with the binary whose sample
/// event (the one `events.rs` feeds it) is of that kind: a swap of two such lines fails here.
#[test]
fn each_event_triggered_function_is_deployed_with_the_binary_for_its_trigger() {
    let template = template();
    let mut checked = 0;
    for (id, resource) in functions(&template) {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        let kinds: BTreeSet<&str> = events
            .values()
            .filter_map(|e| e["Type"].as_str())
            .filter(|t| *t != "HttpApi")
            .collect();
        let Some(&kind) = kinds.first() else {
            continue;
        };
        assert_eq!(kinds.len(), 1, "{id} has one kind of trigger");
        let binary = &sam_builds()[id].binary;
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{binary}.json"));
        let sample: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let source = sample["Records"][0]["eventSource"]
            .as_str()
            .or(sample["source"].as_str());
        let expected = match kind {
            "SQS" => "aws:sqs",
            "S3" => "aws:s3",
            "ScheduleV2" => "aws.scheduler",
            other => panic!("{id}: a trigger this test does not know: {other}"),
        };
        assert_eq!(
            source,
            Some(expected),
            "{id} ({binary}) is triggered by {kind}"
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the worker, the upload verifier and housekeeping"
    );
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
fn the_makefile_builds_for_the_architecture_the_template_deploys() {
    let template = template();
    let triple = match template["Globals"]["Function"]["Architectures"][0].as_str() {
        Some("arm64") => "aarch64-unknown-linux-gnu",
        Some("x86_64") => "x86_64-unknown-linux-gnu",
        other => panic!("Globals: Function: Architectures: {other:?}"),
    };
    for (id, resource) in functions(&template) {
        assert!(
            resource["Properties"]["Architectures"].is_null(),
            "{id} overrides the architecture the Makefile builds for"
        );
        let recipe = &sam_builds()[id].recipe;
        let build = recipe
            .iter()
            .find(|l| l.contains(" build --profile "))
            .unwrap_or_else(|| panic!("build-{id} builds: {recipe:#?}"));
        assert!(
            build.contains(&format!("--target {triple} ")),
            "build-{id} builds for {triple}: {build}"
        );
        let machine = if triple.starts_with("aarch64") {
            "b7"
        } else {
            "3e"
        };
        assert!(
            recipe
                .iter()
                .any(|l| l.starts_with("test \"$(od ") && l.contains(&format!(" = {machine} "))),
            "build-{id} refuses a bootstrap of another architecture (ELF machine {machine}): \
             {recipe:#?}"
        );
    }
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
    for (id, resource) in functions(&template) {
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
        let binary = sam_builds()[id].binary.as_str();
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
                // Objects (a public certificate): reading only.
                if actions.iter().all(|a| a.starts_with("s3:")) {
                    assert!(
                        actions.iter().all(|a| *a == "s3:GetObject"),
                        "{binary}: {:?} does more than read objects",
                        statement["Sid"]
                    );
                    continue;
                }
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
    assert_eq!(
        checked,
        [
            "api-catalogue",
            "api-credits",
            "api-docs",
            "api-emission-factors",
            "api-health",
            "api-public-retirements"
        ]
    );
}

/// The value of a CloudFormation short-form function (`!GetAtt X`, `!Sub "..."`), if `value` is
/// one.
fn short_form<'a>(value: &'a Value, function: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == function => Some(&tagged.value),
        _ => None,
    }
}

/// Cognito runs the pre-token trigger (version 2, the Essentials plan it needs), the trigger is
/// the binary that answers it, Cognito may invoke it before the pool first does, and it knows the
/// enrolment client by the name that client is given.
#[test]
fn the_user_pool_runs_the_pre_token_trigger_built_from_its_binary() {
    let template = template();
    let resources = &template["Resources"];
    let pool = &resources["UserPool"];
    assert_eq!(
        pool["Properties"]["UserPoolTier"].as_str(),
        Some("ESSENTIALS")
    );
    let trigger = &pool["Properties"]["LambdaConfig"]["PreTokenGenerationConfig"];
    assert_eq!(trigger["LambdaVersion"].as_str(), Some("V2_0"));
    let arn = short_form(&trigger["LambdaArn"], "GetAtt").and_then(|v| v.as_str());
    let function = arn
        .and_then(|a| a.strip_suffix(".Arn"))
        .expect("LambdaArn: !GetAtt <Function>.Arn");
    assert_eq!(sam_builds()[function].binary, "cognito-pre-token");
    assert_eq!(pool["DependsOn"].as_str(), Some("PreTokenPermission"));
    let permission = &resources["PreTokenPermission"]["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("cognito-idp.amazonaws.com")
    );
    assert_eq!(
        short_form(&permission["FunctionName"], "GetAtt").and_then(|v| v.as_str()),
        arn
    );
    let name_given = short_form(
        &resources["EnrolmentClient"]["Properties"]["ClientName"],
        "Sub",
    );
    let name_known = short_form(
        &resources[function]["Properties"]["Environment"]["Variables"]["AMANAR_ENROLMENT_CLIENT_NAME"],
        "Sub",
    );
    assert!(name_given.is_some());
    assert_eq!(name_given, name_known);
    // The auth function, which hands tokens out, refuses one the trigger did not strip.
    assert_eq!(
        resources["AuthFunction"]["Properties"]["Environment"]["Variables"]
            ["AMANAR_USER_POOL_PRE_TOKEN_TRIGGER"]
            .as_str(),
        Some("true")
    );
}

/// The app clients' secrets reach only the functions that call Cognito with each client: the
/// auth function the app client's, the me function (MFA) the enrolment client's.
#[test]
fn client_secrets_reach_only_the_functions_that_use_them() {
    let template = template();
    let mut holders = BTreeMap::new();
    for (id, resource) in functions(&template) {
        let Some(variables) = resource["Properties"]["Environment"]["Variables"].as_mapping()
        else {
            continue;
        };
        for (name, value) in variables {
            if let Some(source) = short_form(value, "GetAtt").and_then(|v| v.as_str())
                && source.ends_with(".ClientSecret")
            {
                holders.insert(
                    format!("{}={source}", name.as_str().unwrap()),
                    sam_builds()[id].binary.clone(),
                );
            }
        }
    }
    assert_eq!(
        holders,
        BTreeMap::from([
            (
                "AMANAR_ENROLMENT_CLIENT_SECRET=EnrolmentClient.ClientSecret".to_owned(),
                "api-me".to_owned()
            ),
            (
                "AMANAR_USER_POOL_CLIENT_SECRET=UserPoolClient.ClientSecret".to_owned(),
                "api-auth".to_owned()
            ),
        ])
    );
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        globals
            .as_mapping()
            .unwrap()
            .values()
            .all(|v| short_form(v, "GetAtt").is_none()),
        "no secret in Globals"
    );
}
