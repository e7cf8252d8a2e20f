//! Spin variables: defaults, templates, `SPIN_VARIABLE_*` overrides, undefined names, and a
//! missing required variable stopping start-up.

use std::time::Duration;
use tessera_e2e::{Checks, HostCommand, TestDb};

const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "e2e-variables"

[variables]
greeting = { default = "hi" }
override_me = { default = "original" }

[[trigger.http]]
route = "/vars"
component = "vars"

[component.vars]
source = "WASM:vars"
[component.vars.variables]
greeting = "{{ greeting }}"
overridden = "{{ override_me }}"
combined = "{{ greeting }}, world"
literal = "plain text"
"#;

#[test]
fn variable_values() {
    let db = TestDb::new();
    let host = HostCommand::new(&db, MANIFEST)
        .env("SPIN_VARIABLE_OVERRIDE_ME", "from the environment")
        .env_remove("SPIN_VARIABLE_GREETING")
        .start();
    let mut c = Checks::new("variables");

    c.check("default, override, template, literal", || {
        let r = host.get("/vars?name=greeting&name=overridden&name=combined&name=literal");
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        assert_eq!(j["greeting"], "hi", "{j}");
        assert_eq!(j["overridden"], "from the environment", "{j}");
        assert_eq!(j["combined"], "hi, world", "{j}");
        assert_eq!(j["literal"], "plain text", "{j}");
    });

    c.check("undeclared variable is an error the guest sees", || {
        let j = host.get("/vars?name=not_declared").json();
        assert!(j["not_declared"]["error"].is_string(), "{j}");
        assert_eq!(j["not_declared"]["kind"], "undefined", "{j}");
    });

    c.check("application variables are not visible directly", || {
        // Only component variables are; `override_me` is an application variable.
        let j = host.get("/vars?name=override_me").json();
        assert!(j["override_me"]["error"].is_string(), "{j}");
    });

    c.check("invalid name is an error", || {
        let j = host.get("/vars?name=Not-Valid").json();
        assert!(j["Not-Valid"]["error"].is_string(), "{j}");
    });

    c.finish(Some(&host));
}

#[test]
fn missing_required_variable_stops_start_up() {
    let manifest = r#"
spin_manifest_version = 2

[application]
name = "e2e-variables-missing"

[variables]
api_token = { required = true, secret = true }

[[trigger.http]]
route = "/vars"
component = "vars"

[component.vars]
source = "WASM:vars"
[component.vars.variables]
token = "{{ api_token }}"
"#;
    let db = TestDb::new();
    let exited = HostCommand::new(&db, manifest)
        .env_remove("SPIN_VARIABLE_API_TOKEN")
        .run_to_exit(Duration::from_secs(60));
    let output = exited.expect_failure();
    assert!(
        output.contains("api_token"),
        "the error should name the variable `api_token`:\n{output}"
    );
}
