//! Loader tests: a full valid manifest, then one test per error path, each asserting the
//! exact message (the field path is the contract with users).

use std::path::{Path, PathBuf};

use super::*;
use crate::manifest::{FileMount, HttpRoute};

const HEADER: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
"#;

fn ok(body: &str) -> AppManifest {
    parse(&format!("{HEADER}{body}"), Path::new("/srv/app"))
        .unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn err(body: &str) -> String {
    err_raw(&format!("{HEADER}{body}"))
}

fn err_raw(text: &str) -> String {
    match parse(text, Path::new("/srv/app")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const FULL: &str = r#"
spin_manifest_version = 2

[application]
name = "kb"
version = "1.2.3"
description = "Knowledge base"
authors = ["A <a@example.com>"]
targets = ["spin-up:3.2"]
[application.trigger.http]
base = "/"
[application.tool.lint]
level = "savage"

[variables]
database_url = { required = true, secret = true }
api_host = { default = "api.example.com", description = "API" }

[[trigger.http]]
route = "/hello/..."
component = "hello"

[[trigger.http]]
id = "search-trigger"
route = "/search/:q"
component = "kb-search"
executor = { type = "spin" }

[[trigger.http]]
route = { private = true }
component = "embedder"

[[trigger.cron]]
component = "nightly"
cron_expression = "0 0 2 * * *"

[component.hello]
source = "target/wasm32-wasip2/release/hello.wasm"
description = "Says hello"
allowed_outbound_hosts = ["https://api.openai.com", "http://localhost:*", "postgres://{{ api_host }}", "http://self"]
key_value_stores = ["default", "my-store", "my_store"]
ai_models = ["all-minilm-l6-v2"]
environment = { RUST_LOG = "info" }
files = ["assets/**/*", { source = "static", destination = "/static" }]
exclude_files = ["assets/secret.txt"]
dependencies_inherit_configuration = false
dependencies = {}
sqlite_databases = []
[component.hello.variables]
db_url = "{{ database_url }}"
endpoint = "https://{{api_host}}/v1"
[component.hello.build]
command = "cargo build --release --target wasm32-wasip2 -p hello"
workdir = "functions/hello"
watch = ["src/**/*.rs"]
[component.hello.tool.clean]
command = "cargo clean"

[component.kb-search]
source = "/abs/search.wasm"
[component.kb-search.build]
command = ["a", "b"]

[component.embedder]
source = "embedder.wasm"

[component.nightly]
source = "nightly.wasm"
"#;

#[test]
fn full_manifest() {
    let m = parse(FULL, Path::new("/srv/app")).unwrap();
    assert_eq!(m.base_dir, PathBuf::from("/srv/app"));
    assert_eq!(m.application.name, "kb");
    assert_eq!(m.application.version.as_deref(), Some("1.2.3"));
    assert_eq!(m.application.description.as_deref(), Some("Knowledge base"));
    assert_eq!(m.application.authors, ["A <a@example.com>"]);
    assert_eq!(m.application.http_base, "/");

    let db = &m.variables["database_url"];
    assert!(db.required && db.secret && db.default.is_none());
    let host = &m.variables["api_host"];
    assert_eq!(host.default.as_deref(), Some("api.example.com"));
    assert_eq!(host.description.as_deref(), Some("API"));
    assert!(!host.required && !host.secret);

    assert_eq!(m.http_triggers.len(), 3);
    assert_eq!(
        m.http_triggers[0].route,
        HttpRoute::Path("/hello/...".into())
    );
    assert_eq!(m.http_triggers[1].id.as_deref(), Some("search-trigger"));
    assert_eq!(m.http_triggers[1].component, "kb-search");
    assert_eq!(m.http_triggers[1].index, 1);
    assert_eq!(m.http_triggers[2].route, HttpRoute::Private);
    assert_eq!(m.cron_triggers[0].component, "nightly");
    assert_eq!(m.cron_triggers[0].cron_expression, "0 0 2 * * *");

    let hello = m.component("hello").unwrap();
    assert_eq!(hello.id, "hello");
    assert_eq!(
        hello.source,
        PathBuf::from("/srv/app/target/wasm32-wasip2/release/hello.wasm")
    );
    assert_eq!(hello.description.as_deref(), Some("Says hello"));
    assert_eq!(hello.variables["db_url"].as_str(), "{{ database_url }}");
    assert_eq!(
        hello.variables["endpoint"].as_str(),
        "https://{{api_host}}/v1"
    );
    assert_eq!(hello.environment["RUST_LOG"], "info");
    assert_eq!(hello.allowed_outbound_hosts.len(), 4);
    assert_eq!(hello.key_value_stores, ["default", "my-store", "my_store"]);
    assert_eq!(hello.ai_models, ["all-minilm-l6-v2"]);
    assert_eq!(
        hello.files,
        [
            FileMount::Pattern("assets/**/*".into()),
            FileMount::Placement {
                source: "static".into(),
                destination: "/static".into()
            }
        ]
    );
    assert_eq!(hello.exclude_files, ["assets/secret.txt"]);
    let build = hello.build.as_ref().unwrap();
    assert_eq!(
        build.commands,
        ["cargo build --release --target wasm32-wasip2 -p hello"]
    );
    assert_eq!(build.workdir.as_deref(), Some("functions/hello"));
    assert_eq!(build.watch, ["src/**/*.rs"]);

    let search = m.component("kb-search").unwrap();
    assert_eq!(search.source, PathBuf::from("/abs/search.wasm"));
    assert_eq!(search.build.as_ref().unwrap().commands, ["a", "b"]);
    assert_eq!(search.build_command.as_deref(), Some("a && b"));
    assert_eq!(
        hello.build_command.as_deref(),
        Some("cargo build --release --target wasm32-wasip2 -p hello")
    );
    assert_eq!(m.component("embedder").unwrap().build_command, None);
    assert!(m.component("nope").is_none());
}

#[test]
fn load_reads_file_and_uses_its_directory() {
    let dir = std::env::temp_dir().join(format!("tessera-manifest-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spin.toml");
    std::fs::write(&path, FULL).unwrap();
    let m = load(&path).unwrap();
    assert_eq!(m.base_dir, dir);
    assert_eq!(
        m.component("embedder").unwrap().source,
        dir.join("embedder.wasm")
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("nope.toml");
    let e = load(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot read manifest {}: ", missing.display())),
        "{e}"
    );
}

#[test]
fn relative_base_dir_is_made_absolute() {
    let m = parse(HEADER, Path::new("rel")).unwrap();
    assert!(m.base_dir.is_absolute());
    assert!(m.base_dir.ends_with("rel"));
}

#[test]
fn minimal_manifest() {
    let m = ok("");
    assert!(m.components.is_empty() && m.http_triggers.is_empty() && m.variables.is_empty());
    assert_eq!(m.application.version, None);
}

#[test]
fn toml_syntax_error() {
    let e = err_raw("spin_manifest_version = 2\n[application\n");
    assert!(
        e.starts_with("invalid TOML: TOML parse error at line 2"),
        "{e}"
    );
}

#[test]
fn version_errors() {
    assert_eq!(
        err_raw("[application]\nname = \"a\""),
        "spin_manifest_version: missing required field"
    );
    assert_eq!(
        err_raw("spin_manifest_version = \"1\"\nname = \"a\""),
        "spin_manifest_version: expected 2, found \"1\" (only Spin manifest version 2 is supported)"
    );
    assert_eq!(
        err_raw("spin_manifest_version = 3"),
        "spin_manifest_version: expected 2, found 3 (only Spin manifest version 2 is supported)"
    );
    assert_eq!(
        err_raw("spin_version = \"1\"\nname = \"a\""),
        "spin_manifest_version: expected 2, found spin_version = \"1\" (only Spin manifest version 2 is supported)"
    );
}

#[test]
fn top_level_errors() {
    assert_eq!(
        err_raw("spin_manifest_version = 2"),
        "application: missing required field"
    );
    assert_eq!(
        err_raw("spin_manifest_version = 2\nbogus = 1\n[application]\nname = \"a\""),
        "bogus: unknown field (expected one of: application, component, spin_manifest_version, trigger, variables)"
    );
    assert_eq!(
        err_raw("spin_manifest_version = 2\napplication = 1"),
        "application: expected a table, found integer"
    );
}

#[test]
fn application_errors() {
    assert_eq!(
        err_raw("spin_manifest_version = 2\n[application]\nversion = \"1\""),
        "application.name: missing required field"
    );
    assert_eq!(
        err_raw("spin_manifest_version = 2\n[application]\nname = 1"),
        "application.name: expected a string, found integer"
    );
    assert_eq!(
        err("naem = \"x\""),
        "application.naem: unknown field (expected one of: authors, description, name, targets, tool, trigger, version)"
    );
    assert_eq!(
        err("authors = \"me\""),
        "application.authors: expected an array of strings, found string"
    );
    assert_eq!(
        err("[application.trigger.http]\nbase = \"api\""),
        "application.trigger.http.base: base \"api\" must start with '/'"
    );
    assert_eq!(
        err("[application.trigger.http]\nbsae = \"/\""),
        "application.trigger.http.bsae: unknown field (expected one of: base)"
    );
    assert_eq!(
        err("[application.trigger.redis]\naddress = \"redis://x\""),
        "application.trigger.redis: not supported by Tessera: trigger type \"redis\" (supported: http, cron)"
    );
    assert_eq!(
        err("[application.trigger]\nhttp = 1"),
        "application.trigger.http: expected a table, found integer"
    );
}

#[test]
fn http_base_is_applied() {
    let m = ok(r#"
[application.trigger.http]
base = "/api"
[[trigger.http]]
route = "/x"
component = "a"
[component.a]
source = "a.wasm"
"#);
    assert_eq!(m.application.http_base, "/api");
    let r = crate::routes::Router::new(&m).unwrap();
    assert_eq!(r.route("/api/x").unwrap().component_id, "a");
    assert!(r.route("/x").is_none());
}

#[test]
fn variable_errors() {
    assert_eq!(
        err("[variables]\nDatabase = { default = \"x\" }"),
        "variables.Database: invalid variable name: invalid character 'D'. Variable names may contain only lower-case letters, numbers, and underscores."
    );
    assert_eq!(
        err("[variables]\n\"db-url\" = { default = \"x\" }"),
        "variables.db-url: invalid variable name: invalid character '-'. Variable names may contain only lower-case letters, numbers, and underscores."
    );
    assert_eq!(
        err("[variables]\na = { default = \"x\", required = true }"),
        "variables.a: must be `required` OR have a `default`, not both"
    );
    assert_eq!(
        err("[variables]\na = { secret = true }"),
        "variables.a: must be `required` OR have a `default`"
    );
    assert_eq!(
        err("[variables]\na = { required = false }"),
        "variables.a: must be `required` OR have a `default`"
    );
    assert_eq!(
        err("[variables]\na = { default = 1 }"),
        "variables.a.default: expected a string, found integer"
    );
    assert_eq!(
        err("[variables]\na = { required = \"yes\" }"),
        "variables.a.required: expected a boolean, found string"
    );
    assert_eq!(
        err("[variables]\na = { default = \"x\", sceret = true }"),
        "variables.a.sceret: unknown field (expected one of: default, description, required, secret)"
    );
    assert_eq!(
        err("[variables]\na = \"x\""),
        "variables.a: expected a table, found string"
    );
}

const COMPONENT: &str = "[component.a]\nsource = \"a.wasm\"\n";

#[test]
fn component_id_errors() {
    assert_eq!(
        err("[component.my_comp]\nsource = \"a.wasm\""),
        "component.my_comp: invalid component id: words must be separated with '-', not '_'"
    );
    assert_eq!(
        err("[component.\"a.b\"]\nsource = \"a.wasm\""),
        "component.\"a.b\": invalid component id: '-'-separated words may only contain alphanumeric ASCII; got '.'"
    );
    assert_eq!(
        err("[component]\na = 1"),
        "component.a: expected a table, found integer"
    );
}

#[test]
fn component_source_errors() {
    assert_eq!(
        err("[component.kb]\ndescription = \"x\""),
        "component.kb.source: missing required field"
    );
    assert_eq!(
        err("[component.kb]\nsource = \"\""),
        "component.kb.source: must be a path to a .wasm file"
    );
    assert_eq!(
        err("[component.kb]\nsource = { url = \"https://x/a.wasm\", digest = \"sha256:00\" }"),
        "component.kb.source: not supported by Tessera: remote sources ({ url, digest }); build the component and give its local .wasm path"
    );
    assert_eq!(
        err("[component.kb]\nsource = { registry = \"r\", package = \"a:b\", version = \"1\" }"),
        "component.kb.source: not supported by Tessera: registry sources ({ registry, package, version }); build the component and give its local .wasm path"
    );
    assert_eq!(
        err("[component.kb]\nsource = 1"),
        "component.kb.source: expected a path string, found integer"
    );
}

#[test]
fn component_field_errors() {
    let cases = [
        (
            "sorce = \"x\"",
            "component.a.sorce: unknown field (expected one of: ai_models, allowed_http_hosts, allowed_outbound_hosts, build, dependencies, dependencies_inherit_configuration, description, environment, exclude_files, files, key_value_stores, profile, source, sqlite_databases, tool, variables)",
        ),
        (
            "variables = { Bad = \"x\" }",
            "component.a.variables.Bad: invalid variable name: invalid character 'B'. Variable names may contain only lower-case letters, numbers, and underscores.",
        ),
        (
            "variables = { v = 1 }",
            "component.a.variables.v: expected a string, found integer",
        ),
        (
            "variables = { v = \"{{ x\" }",
            "component.a.variables.v: invalid template \"{{ x\": unmatched '{{' in template",
        ),
        (
            "variables = { v = \"{{ X }}\" }",
            "component.a.variables.v: invalid template \"{{ X }}\": \"X\" is not a variable name: invalid character 'X'. Variable names may contain only lower-case letters, numbers, and underscores.",
        ),
        (
            "variables = { v = \"{{ database_url }}\" }",
            "component.a.variables.v: references undefined application variable \"database_url\" (variables: none)",
        ),
        (
            "environment = { A = 1 }",
            "component.a.environment.A: expected a string, found integer",
        ),
        (
            "key_value_stores = [\"b@d\"]",
            "component.a.key_value_stores[0]: invalid name \"b@d\": expected kebab-case or snake_case",
        ),
        (
            "ai_models = [\"ok\", \"Bad_Model\"]",
            "component.a.ai_models[1]: invalid name \"Bad_Model\": words must be separated with '-', not '_'",
        ),
        (
            "sqlite_databases = [\"b@d\"]",
            "component.a.sqlite_databases[0]: invalid name \"b@d\": expected kebab-case or snake_case",
        ),
        (
            "dependencies = { \"x:y\" = \"1.0\" }",
            "component.a.dependencies: not supported by Tessera: component dependencies (component \"a\"); remove `dependencies`",
        ),
        (
            "dependencies = 1",
            "component.a.dependencies: expected a table, found integer",
        ),
        (
            "profile = { debug = { source = \"x.wasm\" } }",
            "component.a.profile: not supported by Tessera: component profiles (component \"a\"); remove `profile`",
        ),
        (
            "allowed_http_hosts = [\"example.com\"]",
            "component.a.allowed_http_hosts: not supported by Tessera: deprecated by Spin; use allowed_outbound_hosts (e.g. \"https://example.com\")",
        ),
        (
            "dependencies_inherit_configuration = \"yes\"",
            "component.a.dependencies_inherit_configuration: expected a boolean, found string",
        ),
        (
            "files = \"x\"",
            "component.a.files: expected an array, found string",
        ),
        (
            "files = [1]",
            "component.a.files[0]: expected a glob string or { source, destination }, found integer",
        ),
        (
            "files = [{ source = \"s\" }]",
            "component.a.files[0].destination: missing required field",
        ),
        (
            "files = [{ source = \"s\", destination = \"rel\" }]",
            "component.a.files[0].destination: \"rel\" must be an absolute path",
        ),
        (
            "files = [{ source = \"s\", destination = \"/d\", mode = \"r\" }]",
            "component.a.files[0].mode: unknown field (expected one of: destination, source)",
        ),
        (
            "exclude_files = [1]",
            "component.a.exclude_files[0]: expected a string, found integer",
        ),
        (
            "build = { workdir = \"x\" }",
            "component.a.build.command: missing required field",
        ),
        (
            "build = { command = 1 }",
            "component.a.build.command: expected a string or an array of strings, found integer",
        ),
        (
            "build = { command = [1] }",
            "component.a.build.command[0]: expected a string, found integer",
        ),
        (
            "build = { command = \"x\", wrkdir = \"y\" }",
            "component.a.build.wrkdir: unknown field (expected one of: command, watch, workdir)",
        ),
        (
            "description = 1",
            "component.a.description: expected a string, found integer",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(err(&format!("{COMPONENT}{line}")), expected, "{line}");
    }
}

#[test]
fn allowed_outbound_host_errors_at_load() {
    let cases = [
        (
            "allowed_outbound_hosts = [\"https://ok.com\", \"api.example.com\"]",
            "component.a.allowed_outbound_hosts[1]: invalid allowed outbound host \"api.example.com\": does not contain a scheme (e.g., 'http://' or '*://')",
        ),
        (
            "allowed_outbound_hosts = [\"http://x.com/path\"]",
            "component.a.allowed_outbound_hosts[0]: invalid allowed outbound host \"http://x.com/path\": hosts must not contain paths",
        ),
        (
            "allowed_outbound_hosts = [\"postgres://{{ db_host \"]",
            "component.a.allowed_outbound_hosts[0]: invalid template \"postgres://{{ db_host \": unmatched '{{' in template",
        ),
        (
            "allowed_outbound_hosts = [\"postgres://{{ db_host }}\"]",
            "component.a.allowed_outbound_hosts[0]: references undefined application variable \"db_host\" (variables: none)",
        ),
        (
            "allowed_outbound_hosts = \"https://x\"",
            "component.a.allowed_outbound_hosts: expected an array of strings, found string",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(err(&format!("{COMPONENT}{line}")), expected, "{line}");
    }
}

#[test]
fn trigger_errors() {
    let cases = [
        (
            "[[trigger.redis]]\ncomponent = \"a\"",
            "trigger.redis: not supported by Tessera: trigger type \"redis\" (supported: http, cron)",
        ),
        (
            "[trigger]\nhttp = { route = \"/\" }",
            "trigger.http: expected an array of tables ([[trigger.<type>]]), found table",
        ),
        (
            "[trigger]\nhttp = [1]",
            "trigger.http[0]: expected a table, found integer",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"",
            "trigger.http[0].component: missing required field",
        ),
        (
            "[[trigger.http]]\ncomponent = \"a\"",
            "trigger.http[0].route: missing required field",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"x.wasm\" }",
            "trigger.http[0].component: not supported by Tessera: inline component tables; define [component.<id>] and use component = \"<id>\"",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = 1",
            "trigger.http[0].component: expected a component id string, found integer",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponents = { x = \"a\" }",
            "trigger.http[0].components: not supported by Tessera: `components` is reserved by Spin; use `component = \"<id>\"`",
        ),
        (
            "[[trigger.http]]\nroute = 1\ncomponent = \"a\"",
            "trigger.http[0].route: expected a route string or { private = true }, found integer",
        ),
        (
            "[[trigger.http]]\nroute = { private = false }\ncomponent = \"a\"",
            "trigger.http[0].route: route must be a string pattern or '{ private = true }'",
        ),
        (
            "[[trigger.http]]\nroute = {}\ncomponent = \"a\"",
            "trigger.http[0].route.private: missing required field",
        ),
        (
            "[[trigger.http]]\nroute = { private = true, public = 1 }\ncomponent = \"a\"",
            "trigger.http[0].route.public: unknown field (expected one of: private)",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"wagi\" }",
            "trigger.http[0].executor.type: not supported by Tessera: the Wagi executor; build the component for wasi:http",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"cgi\" }",
            "trigger.http[0].executor.type: unknown executor type \"cgi\" (expected \"spin\" or \"http\")",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { kind = \"spin\" }",
            "trigger.http[0].executor.type: missing required field",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"http\", argv = \"x\" }",
            "trigger.http[0].executor.argv: unknown field (expected one of: type)",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\nstatic_response = { body = \"hi\" }\ncomponent = \"a\"",
            "trigger.http[0].static_response: not supported by Tessera: static responses; point the route at a component",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nrotue = \"/x\"",
            "trigger.http[0].rotue: unknown field (expected one of: component, components, executor, id, route, static_response)",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/x\"\ncomponent = \"b\"\n[[trigger.http]]\nroute = \"/y\"\ncomponent = \"kbb\"",
            "trigger.http[1].component: no component \"b\" (components: a)",
        ),
        (
            "[[trigger.cron]]\ncomponent = \"a\"",
            "trigger.cron[0].cron_expression: missing required field",
        ),
        (
            "[[trigger.cron]]\ncomponent = \"a\"\ncron_expression = \" \"",
            "trigger.cron[0].cron_expression: must not be empty",
        ),
        (
            "[[trigger.cron]]\ncomponent = \"ghost\"\ncron_expression = \"* * * * * *\"",
            "trigger.cron[0].component: no component \"ghost\" (components: a)",
        ),
        (
            "[[trigger.cron]]\ncomponent = \"a\"\ncron_expression = \"* * * * * *\"\nschedule = 1",
            "trigger.cron[0].schedule: unknown field (expected one of: component, components, cron_expression, id)",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(err(&format!("{COMPONENT}{body}")), expected, "{body}");
    }
}

#[test]
fn unknown_component_lists_available_ones() {
    let body = r#"
[[trigger.http]]
route = "/a"
component = "a"
[[trigger.http]]
route = "/b"
component = "b"
[[trigger.http]]
route = "/c"
component = "kbb"
[component.a]
source = "a.wasm"
[component.b]
source = "b.wasm"
"#;
    assert_eq!(
        err(body),
        "trigger.http[2].component: no component \"kbb\" (components: a, b)"
    );
    assert_eq!(
        err("[[trigger.http]]\nroute = \"/\"\ncomponent = \"x\""),
        "trigger.http[0].component: no component \"x\" (components: none)"
    );
}

#[test]
fn route_errors_at_load() {
    let body = |r1: &str, r2: &str| {
        format!(
            "{COMPONENT}[component.b]\nsource = \"b.wasm\"\n[[trigger.http]]\nroute = \"{r1}\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"{r2}\"\ncomponent = \"b\"\n"
        )
    };
    assert_eq!(
        err(&body("/x", "/x/")),
        "trigger.http[1].route: route \"/x/\" duplicates trigger.http[0].route (route \"/x\", component \"a\")"
    );
    assert_eq!(
        err(&body("/u/:id", "/u/:name")),
        "trigger.http[1].route: route \"/u/:name\" duplicates trigger.http[0].route (route \"/u/:id\", component \"a\")"
    );
    assert_eq!(
        err(&body("/x", "/a//b")),
        "trigger.http[1].route: route \"/a//b\" has an empty path segment ('//')"
    );
    // Distinct routes load fine, and private triggers never collide.
    ok(&body("/x", "/x/..."));
    ok(&format!(
        "{COMPONENT}[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"a\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"a\"\n"
    ));
}

#[test]
fn component_variable_referencing_defined_variable_loads() {
    let m = ok(r#"
[variables]
db_host = { default = "localhost" }
[component.a]
source = "a.wasm"
allowed_outbound_hosts = ["postgres://{{ db_host }}:5432"]
variables = { host = "{{ db_host }}" }
"#);
    assert_eq!(
        m.component("a").unwrap().variables["host"].as_str(),
        "{{ db_host }}"
    );
    assert_eq!(
        err(r#"
[variables]
db_host = { default = "localhost" }
[component.a]
source = "a.wasm"
variables = { v = "{{ db_host }}-{{ missing }}" }
"#),
        "component.a.variables.v: references undefined application variable \"missing\" (variables: db_host)"
    );
}
