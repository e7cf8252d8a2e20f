//! Checks that span sections: triggers name existing components, templates name existing
//! application variables, and HTTP routes parse and do not collide.

use crate::error::ManifestError;
use crate::manifest::AppManifest;
use crate::reader::join;
use crate::routes::Router;
use crate::template::Template;

pub fn cross_references(m: &AppManifest) -> Result<(), ManifestError> {
    let triggers = m
        .http_triggers
        .iter()
        .map(|t| (t.field(), &t.component))
        .chain(
            m.cron_triggers
                .iter()
                .map(|t| (format!("trigger.cron[{}]", t.index), &t.component)),
        );
    for (field, component) in triggers {
        if !m.components.contains_key(component) {
            return Err(ManifestError::UnknownComponent {
                field: format!("{field}.component"),
                component: component.clone(),
                available: m.components.keys().cloned().collect(),
            });
        }
    }

    for (id, component) in &m.components {
        let field = join("component", id);
        for (name, template) in &component.variables {
            check_variables(m, join(&join(&field, "variables"), name), template)?;
        }
        for (i, entry) in component.allowed_outbound_hosts.iter().enumerate() {
            // Parsed successfully at load; a failure here would be a loader bug.
            if let Ok(template) = Template::parse(entry) {
                check_variables(m, format!("{field}.allowed_outbound_hosts[{i}]"), &template)?;
            }
        }
    }

    Router::new(m)?;
    Ok(())
}

fn check_variables(m: &AppManifest, field: String, t: &Template) -> Result<(), ManifestError> {
    match t.variables().find(|v| !m.variables.contains_key(*v)) {
        None => Ok(()),
        Some(variable) => Err(ManifestError::UndefinedVariable {
            field,
            variable: variable.to_string(),
            defined: m.variables.keys().cloned().collect(),
        }),
    }
}
