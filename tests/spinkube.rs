//! The SpinKube deployment (issue 16, item 9): every document in infra/spinkube/*.yaml is
//! valid against the schema for its kind in infra/spinkube/schemas, and the documents agree
//! with each other and with spin.toml: the variables the SpinApp binds exist in the app, the
//! secrets and keys they name are defined, the runtime config reaches the worker's Service,
//! the autoscalers target what is deployed, the worker asks for a GPU and is probed on the
//! port it listens on, and the database is reached over TLS.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    tessera_e2e::root().join("infra/spinkube")
}

/// `(file name, document)` for every YAML document of every manifest.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("infra/spinkube")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in infra/spinkube");
    let mut docs = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("readable manifest");
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name}: not YAML this test can read: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

/// The schema file for `apiVersion` + `kind`.
fn schema_file(api_version: &str, kind: &str) -> Option<&'static str> {
    Some(match (api_version, kind) {
        ("core.spinkube.dev/v1alpha1", "SpinApp") => "spinapp-core.spinkube.dev-v1alpha1.json",
        ("apps/v1", "Deployment") => "deployment-apps-v1.json",
        ("v1", "Service") => "service-v1.json",
        ("v1", "Secret") => "secret-v1.json",
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            "horizontalpodautoscaler-autoscaling-v2.json"
        }
        _ => return None,
    })
}

fn validator(file: &str) -> jsonschema::Validator {
    let path = dir().join("schemas").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{file} is not a valid JSON Schema: {e}"))
}

/// Every error of `doc` against the schema for its kind, as `path: message` lines.
fn schema_errors(doc: &Value) -> Vec<String> {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    let Some(file) = schema_file(api, kind) else {
        return vec![format!(
            "no schema for apiVersion {api:?} kind {kind:?} in infra/spinkube/schemas"
        )];
    };
    validator(file)
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn name_of(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The one document of `kind` named `name`.
fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} named {name}");
    found[0]
}

/// A Secret's keys, from `stringData` and `data`.
fn secret_keys(secret: &Value) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for field in ["stringData", "data"] {
        if let Some(map) = secret[field].as_object() {
            for (k, v) in map {
                keys.insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
    }
    keys
}

/// Every `secretKeyRef` anywhere under `value`.
fn secret_refs(value: &Value, out: &mut Vec<(String, String, bool)>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("secretKeyRef") {
                out.push((
                    r["name"].as_str().unwrap_or("").to_string(),
                    r["key"].as_str().unwrap_or("").to_string(),
                    r["optional"] == true,
                ));
            }
            map.values().for_each(|v| secret_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| secret_refs(v, out)),
        _ => {}
    }
}

fn spin_toml() -> toml::Table {
    let text = std::fs::read_to_string(tessera_e2e::root().join("spin.toml")).expect("spin.toml");
    text.parse().expect("spin.toml is TOML")
}

#[test]
fn every_manifest_is_valid_against_the_schema_for_its_kind() {
    let docs = documents();
    let mut failures = Vec::new();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &docs {
        kinds.insert(doc["kind"].as_str().unwrap_or("?").to_string());
        for e in schema_errors(doc) {
            failures.push(format!("{file} {}: {e}", name_of(doc)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let expected: BTreeSet<String> = [
        "SpinApp",
        "Deployment",
        "Service",
        "Secret",
        "HorizontalPodAutoscaler",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds, expected, "the deployment's kinds");
}

#[test]
fn the_schemas_refuse_what_the_cluster_would_not_run_or_would_silently_drop() {
    let docs = documents();
    let app = find(&docs, "SpinApp", "tessera").clone();
    let worker = find(&docs, "Deployment", "gpu-worker").clone();
    let hpa = find(&docs, "HorizontalPodAutoscaler", "tessera").clone();

    let mut misspelt = app.clone();
    misspelt["spec"]["enableAutoscalling"] = Value::Bool(true);
    assert!(
        !schema_errors(&misspelt).is_empty(),
        "an unknown SpinApp field"
    );

    let mut no_image = app.clone();
    no_image["spec"].as_object_mut().unwrap().remove("image");
    assert!(
        !schema_errors(&no_image).is_empty(),
        "a SpinApp without image"
    );

    let mut both = app.clone();
    both["spec"]["replicas"] = 3.into();
    assert!(
        !schema_errors(&both).is_empty(),
        "replicas with enableAutoscaling"
    );

    let mut bad_quantity = worker.clone();
    bad_quantity["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] =
        "one".into();
    assert!(!schema_errors(&bad_quantity).is_empty(), "a quantity 'one'");

    let mut no_containers = worker.clone();
    no_containers["spec"]["template"]["spec"]["containers"] = Value::Array(vec![]);
    assert!(!schema_errors(&no_containers).is_empty(), "no containers");

    let mut no_target = hpa.clone();
    no_target["spec"]["metrics"][0]["resource"]["target"]
        .as_object_mut()
        .unwrap()
        .remove("averageUtilization");
    assert!(
        !schema_errors(&no_target).is_empty(),
        "a Utilization target without averageUtilization"
    );

    let mut unknown_kind = app;
    unknown_kind["apiVersion"] = "spinoperator.dev/v1".into();
    assert!(
        !schema_errors(&unknown_kind).is_empty(),
        "an unknown apiVersion"
    );
}

#[test]
fn the_spinapp_binds_the_apps_variables_from_defined_secrets() {
    let docs = documents();
    let app = find(&docs, "SpinApp", "tessera");
    let spin = spin_toml();
    let declared = spin["variables"].as_table().expect("spin.toml [variables]");

    let bound: BTreeSet<&str> = app["spec"]["variables"]
        .as_array()
        .expect("spec.variables")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    for name in &bound {
        assert!(
            declared.contains_key(*name),
            "the SpinApp binds {name}, which spin.toml does not declare"
        );
    }
    for (name, decl) in declared {
        let required = decl.get("required").and_then(|r| r.as_bool()) == Some(true);
        assert!(
            !required || bound.contains(name.as_str()),
            "spin.toml requires {name}; the SpinApp does not bind it"
        );
    }
    for needed in ["database_url", "database_host"] {
        assert!(bound.contains(needed), "{needed} must be bound");
    }

    let mut refs = Vec::new();
    for (_, doc) in &docs {
        secret_refs(doc, &mut refs);
    }
    assert!(!refs.is_empty());
    for (secret, key, optional) in refs {
        let keys = secret_keys(find(&docs, "Secret", &secret));
        assert!(
            optional || keys.contains_key(&key),
            "secret {secret} has no key {key}"
        );
    }

    // The managed Postgres is reached over TLS, at the host the components may reach.
    let db = secret_keys(find(&docs, "Secret", "tessera-database"));
    let url = &db["url"];
    assert!(url.contains("sslmode=require"), "{url}");
    assert!(
        url.contains(&format!("@{}/", db["host"])),
        "url and host agree: {url}"
    );
}

#[test]
fn the_runtime_config_uses_redis_and_reaches_the_worker_with_its_token() {
    let docs = documents();
    let app = find(&docs, "SpinApp", "tessera");
    let secret_name = app["spec"]["runtimeConfig"]["loadFromSecret"]
        .as_str()
        .expect("runtimeConfig.loadFromSecret");
    let keys = secret_keys(find(&docs, "Secret", secret_name));
    let text = keys
        .get("runtime-config.toml")
        .expect("the operator reads the key runtime-config.toml");
    let config: toml::Table = text.parse().expect("runtime-config.toml is TOML");
    assert_eq!(
        config["key_value_store"]["default"]["type"].as_str(),
        Some("redis"),
        "the default key-value store is shared by every replica"
    );

    let llm = &config["llm_compute"];
    assert_eq!(llm["type"].as_str(), Some("remote_http"));
    let service = find(&docs, "Service", "gpu-worker");
    let port = service["spec"]["ports"][0]["port"].as_u64().expect("port");
    let namespace = service["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    assert_eq!(
        llm["url"].as_str(),
        Some(format!("http://gpu-worker.{namespace}.svc.cluster.local:{port}").as_str()),
        "llm_compute reaches the worker's Service"
    );
    let token = secret_keys(find(&docs, "Secret", "tessera-worker"));
    assert_eq!(
        llm["auth_token"].as_str(),
        Some(token["token"].as_str()),
        "the runtime config carries the worker's token"
    );
}

#[test]
fn the_worker_asks_for_a_gpu_and_is_probed_where_it_listens() {
    let docs = documents();
    let worker = find(&docs, "Deployment", "gpu-worker");
    let pod = &worker["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let resources = &container["resources"];
    assert_eq!(resources["limits"]["nvidia.com/gpu"], 1, "{resources}");

    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name}=… in {args:?}"))
    };
    assert_eq!(flag("backend"), "cuda");
    let listen_port: u64 = flag("listen")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("--listen host:port");
    assert!(
        flag("listen").starts_with("0.0.0.0:"),
        "reachable from the Service"
    );

    let named: BTreeMap<&str, u64> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    let port_of = |v: &Value| match v {
        Value::String(name) => named.get(name.as_str()).copied(),
        other => other.as_u64(),
    };
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], "/health", "{probe}");
        assert_eq!(port_of(&get["port"]), Some(listen_port), "{probe} port");
    }
    let service = find(&docs, "Service", "gpu-worker");
    assert_eq!(
        port_of(&service["spec"]["ports"][0]["targetPort"]),
        Some(listen_port)
    );
    for (label, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&pod["metadata"]["labels"][label], value, "selector {label}");
    }
}

#[test]
fn the_autoscalers_target_what_is_deployed() {
    let docs = documents();
    let app = find(&docs, "SpinApp", "tessera");
    assert_eq!(
        app["spec"]["enableAutoscaling"], true,
        "the SpinApp leaves its replicas to the HPA"
    );
    let mut targets = BTreeSet::new();
    for (_, doc) in docs
        .iter()
        .filter(|(_, d)| d["kind"] == "HorizontalPodAutoscaler")
    {
        let target = &doc["spec"]["scaleTargetRef"];
        assert_eq!(target["kind"], "Deployment", "{}", name_of(doc));
        let name = target["name"].as_str().expect("target name");
        // The operator names the SpinApp's Deployment after the SpinApp.
        let deployed = docs.iter().any(|(_, d)| {
            d["metadata"]["name"] == name && (d["kind"] == "Deployment" || d["kind"] == "SpinApp")
        });
        assert!(
            deployed,
            "{} scales {name}, which is not deployed",
            name_of(doc)
        );
        let (min, max) = (
            doc["spec"]["minReplicas"].as_u64().unwrap_or(1),
            doc["spec"]["maxReplicas"].as_u64().expect("maxReplicas"),
        );
        assert!(min <= max, "{}: min {min} > max {max}", name_of(doc));
        targets.insert(name.to_string());
    }
    let expected: BTreeSet<String> = ["tessera", "gpu-worker"].map(String::from).into();
    assert_eq!(targets, expected);
}

/// The schema files are JSON Schemas that compile, and each is used.
#[test]
fn every_schema_compiles_and_is_used() {
    let used: BTreeSet<&str> = [
        ("core.spinkube.dev/v1alpha1", "SpinApp"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "Secret"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ]
    .iter()
    .filter_map(|(a, k)| schema_file(a, k))
    .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir().join("schemas"))
        .expect("schemas")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "json"))
        .collect();
    for file in &on_disk {
        validator(file);
        assert!(used.contains(file.as_str()), "{file} is not used");
    }
    assert_eq!(on_disk.len(), used.len());
}
