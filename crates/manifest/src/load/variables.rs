//! `[variables]`: application variables.

use std::collections::BTreeMap;

use crate::error::ManifestError;
use crate::ids::check_variable_name;
use crate::manifest::Variable;
use crate::reader::TableReader;

pub fn read(vars: TableReader<'_>) -> Result<BTreeMap<String, Variable>, ManifestError> {
    let mut out = BTreeMap::new();
    for (name, value) in vars.entries() {
        let field = vars.field(name);
        check_variable_name(name).map_err(|reason| ManifestError::Invalid {
            field: field.clone(),
            reason: format!("invalid variable name: {reason}"),
        })?;
        let mut var = TableReader::from_value(field.clone(), value)?;
        let default = var.string("default")?;
        let required = var.bool("required")?.unwrap_or(false);
        let secret = var.bool("secret")?.unwrap_or(false);
        let description = var.string("description")?;
        var.finish()?;
        // spin-loader: `ensure!(v.required ^ v.default.is_some(), ...)`.
        if required == default.is_some() {
            let reason = if required {
                "must be `required` OR have a `default`, not both"
            } else {
                "must be `required` OR have a `default`"
            };
            return Err(ManifestError::Invalid {
                field,
                reason: reason.into(),
            });
        }
        out.insert(
            name.clone(),
            Variable {
                default,
                required,
                secret,
                description,
            },
        );
    }
    Ok(out)
}
