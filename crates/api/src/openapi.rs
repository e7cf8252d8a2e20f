//! The API description, one document for all components (issue 16): each component
//! describes its own operations in a [`Fragment`] (request bodies from the very types its
//! handlers parse, through `schemars`), answers it on `GET /internal/openapi`, and
//! [`document`] joins the fragments into OpenAPI 3.1 at `/openapi.json`. Every error of every
//! operation is documented as the one JSON error shape ([`error_schema`]).

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// Where a component answers its fragment, reached by service chaining only.
pub const FRAGMENT_PATH: &str = "/internal/openapi";

/// One component's operations and the schemas they name.
pub struct Fragment {
    component: String,
    operations: Vec<Operation>,
    generator: SchemaGenerator,
}

/// One method on one path (`/v1/alerts/channels/{id}`: `{name}` segments are path
/// parameters, strings).
pub struct Operation {
    method: &'static str,
    path: String,
    summary: String,
    role: Option<&'static str>,
    body: Option<(String, Value)>,
    query: Vec<(String, Value, String, bool)>,
    success: (u16, String, &'static str),
    /// Needs no API key (authenticated otherwise, e.g. a webhook's signature).
    keyless: Option<&'static str>,
    /// Other successes than `success` (e.g. 200 for an idempotent repeat of a 201).
    also: Vec<(u16, &'static str)>,
    /// The body may be left out (every field has a default).
    body_optional: bool,
}

impl Operation {
    fn new(method: &'static str, path: &str, summary: &str) -> Self {
        Self {
            method,
            path: path.to_string(),
            summary: summary.to_string(),
            role: None,
            body: None,
            query: Vec::new(),
            success: (200, "application/json".into(), "the answer"),
            keyless: None,
            also: Vec::new(),
            body_optional: false,
        }
    }
    pub fn get(path: &str, summary: &str) -> Self {
        Self::new("get", path, summary)
    }
    pub fn post(path: &str, summary: &str) -> Self {
        Self::new("post", path, summary).created_or_ok(200)
    }
    pub fn put(path: &str, summary: &str) -> Self {
        Self::new("put", path, summary)
    }
    pub fn delete(path: &str, summary: &str) -> Self {
        Self::new("delete", path, summary)
    }

    /// The status a success answers (200 unless set).
    pub fn created_or_ok(mut self, status: u16) -> Self {
        self.success.0 = status;
        self
    }

    /// A success answered as `media_type` (e.g. `text/event-stream`).
    pub fn answers(mut self, media_type: &str, what: &'static str) -> Self {
        self.success.1 = media_type.to_string();
        self.success.2 = what;
        self
    }

    /// The least role that may call it (when more than `member`).
    pub fn role(mut self, role: &'static str) -> Self {
        self.role = Some(role);
        self
    }

    /// A second success, answered as JSON (e.g. 200 when a create finds the same thing).
    pub fn or_answers(mut self, status: u16, what: &'static str) -> Self {
        self.also.push((status, what));
        self
    }

    /// The request body may be left out.
    pub fn body_optional(mut self) -> Self {
        self.body_optional = true;
        self
    }

    /// Takes no API key: `how` says what authenticates the caller instead.
    pub fn keyless(mut self, how: &'static str) -> Self {
        self.keyless = Some(how);
        self
    }

    /// A query parameter with its JSON schema (e.g. `json!({"type": "integer"})`).
    pub fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query
            .push((name.into(), schema, description.into(), false));
        self
    }

    /// A query parameter the operation refuses to run without.
    pub fn required_query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query
            .push((name.into(), schema, description.into(), true));
        self
    }
}

impl Fragment {
    pub fn new(component: &str) -> Self {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
        });
        Self {
            component: component.to_string(),
            operations: Vec::new(),
            generator: settings.into_generator(),
        }
    }

    /// Adds `op` with no request body.
    pub fn op(mut self, op: Operation) -> Self {
        self.operations.push(op);
        self
    }

    /// Adds `op` whose JSON body is parsed as `T`.
    pub fn op_with<T: JsonSchema>(mut self, mut op: Operation) -> Self {
        let schema = self.generator.subschema_for::<T>();
        op.body = Some(("application/json".into(), schema.to_value()));
        self.operations.push(op);
        self
    }

    /// Adds `op` whose body is `media_type` described by `schema` (a body the handler reads
    /// itself, e.g. NDJSON or a signed webhook).
    pub fn op_with_body(mut self, mut op: Operation, media_type: &str, schema: Value) -> Self {
        op.body = Some((media_type.into(), schema));
        self.operations.push(op);
        self
    }

    /// `{"component", "paths", "schemas"}`: what `GET /internal/openapi` answers.
    pub fn to_json(mut self) -> Value {
        let mut paths = Map::new();
        for op in &self.operations {
            let entry = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
            entry[op.method] = operation_json(&self.component, op);
        }
        json!({
            "component": self.component,
            "paths": paths,
            "schemas": Value::Object(self.generator.take_definitions(true)),
        })
    }
}

fn operation_json(component: &str, op: &Operation) -> Value {
    let mut parameters: Vec<Value> = path_parameters(&op.path)
        .into_iter()
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    for (name, schema, description, required) in &op.query {
        parameters.push(json!({
            "name": name, "in": "query", "required": required,
            "schema": schema, "description": description,
        }));
    }
    let mut description = format!("Component `{component}`.");
    if let Some(role) = op.role {
        description.push_str(&format!(" Needs role `{role}` or above."));
    }
    if let Some(how) = op.keyless {
        description.push_str(&format!(" Takes no API key: {how}."));
    }
    let (status, media_type, what) = &op.success;
    let mut out = json!({
        "operationId": operation_id(op.method, &op.path),
        "summary": op.summary,
        "description": description,
        "tags": [component],
        "responses": {
            status.to_string(): {
                "description": what,
                "content": {media_type.as_str(): {"schema": {}}},
            },
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        },
    });
    for (status, what) in &op.also {
        out["responses"][status.to_string()] = json!({
            "description": what,
            "content": {"application/json": {"schema": {}}},
        });
    }
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    if op.keyless.is_some() {
        out["security"] = json!([]);
    }
    if let Some((media_type, schema)) = &op.body {
        out["requestBody"] = json!({
            "required": !op.body_optional,
            "content": {media_type.as_str(): {"schema": schema}},
        });
    }
    out
}

/// `{name}` segments of `path`.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// `post_v1_alerts_channels_id`: unique per method and path.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            segment
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// The body of every error answer: `{"error": {"code", "message", "field"?}}`
/// ([`crate::ApiError`]).
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "stable, machine-readable"},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "the offending field or header"},
                    "request_id": {"type": "string"},
                },
            },
        },
    })
}

/// Why fragments cannot be joined.
#[derive(Debug, PartialEq)]
pub enum JoinError {
    /// Two components describe the same method on the same path.
    DuplicateOperation(String),
    /// Two components name different schemas alike.
    ConflictingSchema(String),
    /// A fragment is not `{"component", "paths", "schemas"}`.
    Malformed(String),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateOperation(what) => write!(f, "{what} is described twice"),
            Self::ConflictingSchema(name) => {
                write!(f, "two components describe different schemas named {name}")
            }
            Self::Malformed(what) => write!(f, "malformed fragment: {what}"),
        }
    }
}

/// The OpenAPI 3.1 document of `fragments` (what components answered on [`FRAGMENT_PATH`])
/// plus `host_paths` (the host's own, e.g. `/health`, which need no key).
pub fn document(version: &str, fragments: &[Value]) -> Result<Value, JoinError> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    for fragment in fragments {
        let component = fragment["component"].as_str().unwrap_or("?");
        let (Some(ops), Some(defs)) = (
            fragment["paths"].as_object(),
            fragment["schemas"].as_object(),
        ) else {
            return Err(JoinError::Malformed(component.to_string()));
        };
        for (path, methods) in ops {
            let entry = paths.entry(path.clone()).or_insert_with(|| json!({}));
            for (method, op) in methods.as_object().into_iter().flatten() {
                if entry.get(method).is_some() {
                    return Err(JoinError::DuplicateOperation(format!(
                        "{} {path}",
                        method.to_uppercase()
                    )));
                }
                entry[method] = op.clone();
            }
        }
        for (name, schema) in defs {
            match schemas.get(name) {
                Some(existing) if existing != schema => {
                    return Err(JoinError::ConflictingSchema(name.clone()));
                }
                _ => {
                    schemas.insert(name.clone(), schema.clone());
                }
            }
        }
    }
    for (path, summary) in [
        ("/health", "The host is up"),
        (
            "/ready",
            "The host can serve: database reachable, migrations applied",
        ),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {
                "operationId": operation_id("get", path),
                "summary": summary,
                "description": "Answered by the host itself; needs no key.",
                "tags": ["host"],
                "security": [],
                "responses": {
                    "200": {"description": "yes", "content": {"application/json": {"schema": {}}}},
                    "503": {"$ref": "#/components/responses/Error"},
                },
            }}),
        );
    }
    Ok(json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Tessera",
            "version": version,
            "description": "The intelligence layer for AI copilots: knowledge base, progressive chat, \
                            pickers, validator, alerts, feedback. Every error answers the `Error` \
                            shape; every route but /health, /ready and /openapi.json needs \
                            `Authorization: Bearer <API key>`.",
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "tsk_<prefix>_<secret>"},
            },
            "responses": {
                "Error": {
                    "description": "the request was refused or failed; `code` says why",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "schemas": schemas,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct NewThing {
        /// What it is called.
        name: String,
        size: Option<u32>,
    }

    fn things() -> Value {
        Fragment::new("things")
            .op_with::<NewThing>(
                Operation::post("/v1/things", "Make a thing")
                    .created_or_ok(201)
                    .role("operator"),
            )
            .op(Operation::get("/v1/things/{id}", "One thing"))
            .op_with::<NewThing>(
                Operation::put("/v1/things/{id}", "Replace a thing")
                    .or_answers(201, "there was none: made")
                    .body_optional(),
            )
            .op(Operation::get("/v1/things", "Things").query(
                "limit",
                json!({"type": "integer", "minimum": 1}),
                "at most this many",
            ))
            .to_json()
    }

    #[test]
    fn a_fragment_names_its_body_schema_and_path_parameters() {
        let f = things();
        let post = &f["paths"]["/v1/things"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/NewThing"
        );
        assert_eq!(f["schemas"]["NewThing"]["required"], json!(["name"]));
        assert!(post["responses"]["201"].is_object());
        assert_eq!(
            post["responses"]["4XX"]["$ref"],
            "#/components/responses/Error"
        );
        assert!(post["description"].as_str().unwrap().contains("operator"));
        let get = &f["paths"]["/v1/things/{id}"]["get"];
        assert_eq!(get["parameters"][0]["name"], "id");
        assert_eq!(get["parameters"][0]["in"], "path");
        assert_eq!(get["operationId"], "get_v1_things_id");
        let put = &f["paths"]["/v1/things/{id}"]["put"];
        assert!(put["responses"]["200"].is_object() && put["responses"]["201"].is_object());
        assert_eq!(put["requestBody"]["required"], false);
        assert_eq!(post["requestBody"]["required"], true);
    }

    #[test]
    fn fragments_join_into_one_document() {
        let other = Fragment::new("other")
            .op(Operation::delete("/v1/things/{id}", "Remove a thing"))
            .to_json();
        let doc = document("0.1.0", &[things(), other]).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let one = &doc["paths"]["/v1/things/{id}"];
        assert!(one["get"].is_object() && one["delete"].is_object());
        assert!(doc["components"]["schemas"]["Error"].is_object());
        assert!(doc["components"]["schemas"]["NewThing"].is_object());
        assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    }

    #[test]
    fn a_route_described_twice_or_a_schema_name_used_twice_is_refused() {
        assert_eq!(
            document("0", &[things(), things()]).unwrap_err(),
            JoinError::DuplicateOperation("GET /v1/things".into())
        );
        let mut clash = Fragment::new("clash").to_json();
        clash["schemas"]["NewThing"] = json!({"type": "integer"});
        assert_eq!(
            document("0", &[things(), clash]).unwrap_err(),
            JoinError::ConflictingSchema("NewThing".into())
        );
        assert!(matches!(
            document("0", &[json!({"component": "x"})]),
            Err(JoinError::Malformed(_))
        ));
    }
}
