//! `[application]` and its `[application.trigger.<type>]` settings.

use crate::error::ManifestError;
use crate::manifest::Application;
use crate::reader::TableReader;

pub fn read(mut app: TableReader<'_>) -> Result<Application, ManifestError> {
    let name = app.required_string("name")?;
    let version = app.string("version")?;
    let description = app.string("description")?;
    let authors = app.string_list("authors")?;
    // Deployment targets and tool settings mean nothing to a local host.
    app.ignore("targets");
    app.ignore("tool");
    let http_base = match app.table_of("trigger")? {
        Some(triggers) => read_trigger_settings(triggers)?,
        None => "/".to_string(),
    };
    app.finish()?;
    Ok(Application {
        name,
        version,
        description,
        authors,
        http_base,
    })
}

/// Returns the HTTP base path (default `/`). Cron has no app-level settings; other trigger
/// types are not supported at all.
fn read_trigger_settings(triggers: TableReader<'_>) -> Result<String, ManifestError> {
    let mut base = "/".to_string();
    for (kind, value) in triggers.entries() {
        let field = triggers.field(kind);
        let mut settings = TableReader::from_value(field.clone(), value)?;
        match kind.as_str() {
            "http" => {
                if let Some(b) = settings.string("base")? {
                    if !b.starts_with('/') {
                        return Err(ManifestError::Invalid {
                            field: settings.field("base"),
                            reason: format!("base {b:?} must start with '/'"),
                        });
                    }
                    base = b;
                }
            }
            "cron" => {}
            other => {
                return Err(ManifestError::Unsupported {
                    field,
                    reason: format!("trigger type {other:?} (supported: http, cron)"),
                });
            }
        }
        settings.finish()?;
    }
    Ok(base)
}
