//! Variable resolution, Spin's way: application variables (`[variables]`) take their value
//! from the environment (`SPIN_VARIABLE_<NAME>`, name uppercased; Spin's env provider)
//! or their `default`; components see only their own `variables`, templates over the
//! application variables.
//!
//! Everything is resolved once, in `Resolver::new`, so a missing required variable stops
//! the host at startup (as `spin up` does) rather than at the first guest call, and
//! lookups at request time cannot fail for any reason but the guest's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{ManifestError, VarError};
use crate::ids::check_variable_name;
use crate::manifest::AppManifest;
use crate::template::Template;

/// Prefix of the environment variables that set application variables.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// `SPIN_VARIABLE_<NAME>` for an application variable.
pub fn env_var_name(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// Resolved application variables plus every component's variable templates.
/// `Debug` redacts secret values.
#[derive(Clone)]
pub struct Resolver {
    values: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
    components: BTreeMap<String, BTreeMap<String, Template>>,
}

impl Resolver {
    /// Resolves all application variables, asking `env` for `SPIN_VARIABLE_<NAME>`
    /// (the host passes `|k| std::env::var(k).ok()`). Fails on the first required
    /// variable with no value, naming it and the env var to set.
    pub fn new(
        manifest: &AppManifest,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ManifestError> {
        let mut values = BTreeMap::new();
        let mut secrets = BTreeSet::new();
        for (name, var) in &manifest.variables {
            let env_name = env_var_name(name);
            let value = env(&env_name)
                .or_else(|| var.default.clone())
                .ok_or_else(|| ManifestError::RequiredVariable {
                    name: name.clone(),
                    env: env_name,
                })?;
            values.insert(name.clone(), value);
            if var.secret {
                secrets.insert(name.clone());
            }
        }
        let components = manifest
            .components
            .iter()
            .map(|(id, c)| (id.clone(), c.variables.clone()))
            .collect();
        Ok(Self {
            values,
            secrets,
            components,
        })
    }

    /// `new` with the process environment.
    pub fn from_process_env(manifest: &AppManifest) -> Result<Self, ManifestError> {
        Self::new(manifest, |key| std::env::var(key).ok())
    }

    /// What `spin:variables/get` returns for a component: invalid names first (Spin
    /// validates the key before looking it up), then undefined ones, with Spin's messages.
    pub fn resolve(&self, component_id: &str, name: &str) -> Result<String, VarError> {
        check_variable_name(name)
            .map_err(|reason| VarError::InvalidName(format!("{name:?}: {reason}")))?;
        let vars = self.components.get(component_id).ok_or_else(|| {
            VarError::Undefined(format!("no variable for component {component_id:?}"))
        })?;
        let template = vars.get(name).ok_or_else(|| {
            VarError::Undefined(format!("no variable for {component_id:?}.{name:?}"))
        })?;
        self.resolve_template(template)
    }

    /// Renders any template over the application variables.
    pub fn resolve_template(&self, template: &Template) -> Result<String, VarError> {
        self.render(template).map_err(VarError::InvalidName)
    }

    /// Renders a template; `Err` carries the first unknown variable name.
    pub fn render(&self, template: &Template) -> Result<String, String> {
        template.render(|name| self.values.get(name).map(String::as_str))
    }

    /// Every variable of a component, resolved, sorted by name.
    pub fn resolve_all(&self, component_id: &str) -> Vec<(String, String)> {
        self.components
            .get(component_id)
            .into_iter()
            .flatten()
            .filter_map(|(name, t)| Some((name.clone(), self.render(t).ok()?)))
            .collect()
    }

    /// The resolved value of an application variable.
    pub fn app_variable(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether an application variable is `secret = true`.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secrets.contains(name)
    }

    /// Whether a component variable's value may contain a secret (its template uses a
    /// secret application variable): such values must never be logged.
    pub fn is_component_variable_secret(&self, component_id: &str, name: &str) -> bool {
        self.components
            .get(component_id)
            .and_then(|vars| vars.get(name))
            .is_some_and(|t| t.variables().any(|v| self.is_secret(v)))
    }

    /// Names of all application variables, sorted.
    pub fn variable_names(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, v)| {
                let shown = if self.secrets.contains(k) {
                    "<secret>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("Resolver")
            .field("values", &values)
            .field("components", &self.components.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse;
    use std::path::Path;

    const MANIFEST: &str = r#"
        spin_manifest_version = 2
        [application]
        name = "app"
        [variables]
        database_url = { required = true, secret = true }
        api_host = { default = "api.example.com" }
        greeting = { default = "hello" }
        [[trigger.http]]
        route = "/..."
        component = "web"
        [component.web]
        source = "web.wasm"
        variables = { db_url = "{{ database_url }}", endpoint = "https://{{ api_host }}/v1", plain = "x" }
        [component.bare]
        source = "bare.wasm"
    "#;

    fn manifest() -> AppManifest {
        parse(MANIFEST, Path::new("/app")).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn resolver() -> Resolver {
        Resolver::new(
            &manifest(),
            env(&[
                ("SPIN_VARIABLE_DATABASE_URL", "postgres://u:pw@db/app"),
                ("SPIN_VARIABLE_GREETING", "hi"),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn env_var_names() {
        assert_eq!(env_var_name("database_url"), "SPIN_VARIABLE_DATABASE_URL");
        assert_eq!(env_var_name("a1"), "SPIN_VARIABLE_A1");
    }

    #[test]
    fn resolves_env_then_default() {
        let r = resolver();
        assert_eq!(
            r.app_variable("database_url"),
            Some("postgres://u:pw@db/app")
        );
        assert_eq!(r.app_variable("greeting"), Some("hi"));
        assert_eq!(r.app_variable("api_host"), Some("api.example.com"));
        assert_eq!(r.app_variable("nope"), None);
        assert_eq!(r.variable_names(), ["api_host", "database_url", "greeting"]);
    }

    #[test]
    fn empty_env_value_counts_as_set() {
        let r = Resolver::new(&manifest(), env(&[("SPIN_VARIABLE_DATABASE_URL", "")])).unwrap();
        assert_eq!(r.app_variable("database_url"), Some(""));
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = Resolver::new(&manifest(), env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "variable \"database_url\" is required but not set (set SPIN_VARIABLE_DATABASE_URL)"
        );
    }

    #[test]
    fn component_lookups() {
        let r = resolver();
        assert_eq!(
            r.resolve("web", "db_url").unwrap(),
            "postgres://u:pw@db/app"
        );
        assert_eq!(
            r.resolve("web", "endpoint").unwrap(),
            "https://api.example.com/v1"
        );
        assert_eq!(r.resolve("web", "plain").unwrap(), "x");
        assert_eq!(
            r.resolve_all("web"),
            [
                ("db_url".to_string(), "postgres://u:pw@db/app".to_string()),
                ("endpoint".into(), "https://api.example.com/v1".into()),
                ("plain".into(), "x".into()),
            ]
        );
        assert!(r.resolve_all("bare").is_empty());
        assert!(r.resolve_all("nope").is_empty());
    }

    #[test]
    fn lookup_errors_match_spin() {
        let r = resolver();
        // Application variables are not visible to components directly.
        assert_eq!(
            r.resolve("web", "database_url"),
            Err(VarError::Undefined(
                "no variable for \"web\".\"database_url\"".into()
            ))
        );
        assert_eq!(
            r.resolve("bare", "db_url"),
            Err(VarError::Undefined(
                "no variable for \"bare\".\"db_url\"".into()
            ))
        );
        assert_eq!(
            r.resolve("ghost", "db_url"),
            Err(VarError::Undefined(
                "no variable for component \"ghost\"".into()
            ))
        );
        for bad in ["DB_URL", "", "db-url", "db__url", "_x", "x_"] {
            match r.resolve("web", bad) {
                Err(VarError::InvalidName(msg)) => {
                    assert!(msg.starts_with(&format!("{bad:?}: ")), "{msg}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            r.resolve("web", "DB_URL").unwrap_err().to_string(),
            "invalid variable name: \"DB_URL\": invalid character 'D'. Variable names may contain only lower-case letters, numbers, and underscores."
        );
        assert_eq!(
            r.resolve("web", "nope").unwrap_err().to_string(),
            "undefined variable: no variable for \"web\".\"nope\""
        );
    }

    #[test]
    fn templates_outside_the_manifest() {
        let r = resolver();
        let t = Template::parse("{{ greeting }} {{ ghost }}").unwrap();
        assert_eq!(r.render(&t).unwrap_err(), "ghost");
        assert_eq!(
            r.resolve_template(&t),
            Err(VarError::InvalidName("ghost".into()))
        );
    }

    #[test]
    fn secrets_are_queryable_and_redacted() {
        let r = resolver();
        assert!(r.is_secret("database_url"));
        assert!(!r.is_secret("api_host"));
        assert!(r.is_component_variable_secret("web", "db_url"));
        assert!(!r.is_component_variable_secret("web", "endpoint"));
        assert!(!r.is_component_variable_secret("web", "nope"));
        let debug = format!("{r:?}");
        assert!(!debug.contains("pw@db"), "{debug}");
        assert!(debug.contains("<secret>"));
        assert!(debug.contains("api.example.com"));
    }
}
