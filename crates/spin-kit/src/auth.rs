//! Who is calling, proven: API keys (`Authorization: Bearer tsk_<prefix>_<secret>`) checked
//! by the component itself over its own Postgres connection, so the same .wasm enforces
//! them on the local host and on Spin / SpinKube (docs/adr/0013-api-keys.md).
//!
//! A component calls [`authenticate`] first. In `keys` mode (the Spin variable `auth_mode`,
//! the default) it looks the key up by prefix on every request (a revoked key is refused on
//! its next request), compares the secret's hash in constant time, checks the route's role
//! ([`policy`]), and then REPLACES the identity headers a client may have sent with the
//! key's own (`x-tenant-id`, `x-user-id`, `x-tessera-role`): code that reads them with
//! [`crate::identity`] keeps working and can no longer be lied to. In `trusted-headers`
//! mode (behind a gateway that authenticates) those headers are taken as sent, and a
//! missing `x-tessera-role` means `admin`.
//! State-changing requests are recorded with [`Audit`].

pub mod key;
pub mod policy;
pub mod rate;
mod role;

pub use role::Role;

use crate::identity::{identity_header, valid_identity};
use crate::{ApiError, pg};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;

/// The headers that carry identity inside the application (set here, never trusted from a
/// client in `keys` mode).
pub const TENANT_HEADER: &str = "x-tenant-id";
pub const USER_HEADER: &str = "x-user-id";
pub const ROLE_HEADER: &str = "x-tessera-role";

/// How callers are identified (Spin variable `auth_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Keys,
    TrustedHeaders,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim() {
            "" | "keys" => Some(Mode::Keys),
            "trusted-headers" => Some(Mode::TrustedHeaders),
            _ => None,
        }
    }
}

/// The mode from the component variable `auth_mode`; a component that does not declare it
/// gets `keys` (failing closed).
pub async fn mode() -> Result<Mode, ApiError> {
    let Ok(text) = spin_sdk::variables::get("auth_mode").await else {
        return Ok(Mode::Keys);
    };
    Mode::parse(&text).ok_or_else(|| {
        ApiError::internal(format!(
            "component variable auth_mode is {text:?}; expected \"keys\" or \"trusted-headers\""
        ))
    })
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    /// The user a key was issued for (`x-user-id` in trusted-headers mode), if any.
    pub user: Option<String>,
    pub role: Role,
    /// The key's visible prefix; `None` in trusted-headers mode.
    pub key_prefix: Option<String>,
}

impl Caller {
    /// The user to act as: the key's user, else `default` (e.g. `anonymous`).
    pub fn user_or(&self, default: &str) -> String {
        self.user.clone().unwrap_or_else(|| default.to_string())
    }

    /// Whether the caller may see or change what `owner` owns: their own, or anything in the
    /// tenant for operators and admins.
    pub fn may_act_for(&self, owner: &str) -> bool {
        self.role.at_least(Role::Operator) || self.user.as_deref() == Some(owner)
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(401, "unauthorized", message).with_field("authorization")
}

/// 403 naming the role `needed`, unless the caller has it.
pub fn require_role(caller: &Caller, needed: Role) -> Result<(), ApiError> {
    if caller.role.at_least(needed) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "forbidden",
        format!(
            "this needs the {needed} role (or higher); the caller's role is {}",
            caller.role
        ),
    ))
}

/// Why a request is refused before its handler runs: the error, and the headers that go
/// with it (a 429's `ratelimit-*`).
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    /// The answer: the error's JSON body and status with the headers.
    pub fn response(
        self,
        request_id: Option<&str>,
    ) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode>
    {
        crate::error_response_with(self.error, request_id, &self.headers)
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            headers: Vec::new(),
        }
    }
}

/// A JSON component's front door: [`identify`] the caller (401, 429), [`authorize`] the
/// route (403), run `route`, [`record`] a write in the audit log, and answer its JSON or its
/// error. `route` gets the request with the caller's identity headers set, and the caller.
pub async fn serve_json<F, Fut>(
    mut req: Request,
    route: F,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode>
where
    F: FnOnce(Request, Caller) -> Fut,
    Fut: std::future::Future<
            Output = Result<(spin_sdk::http::StatusCode, serde_json::Value), ApiError>,
        >,
{
    let id = crate::request_id(&req);
    let caller = match identify(&mut req).await {
        Ok(c) => c,
        Err(refusal) => return refusal.response(id.as_deref()),
    };
    let audit = Audit::start(&caller, &req);
    let result = match authorize(&caller, &req) {
        Ok(()) => route(req, caller).await,
        Err(e) => Err(e),
    };
    record(audit, &result).await;
    match result {
        Ok((status, body)) => crate::json_response(status, &body),
        Err(err) => crate::error_response_for(err, id.as_deref()),
    }
}

/// Authenticates `req` and checks its route's role (see the module doc): [`identify`],
/// then [`authorize`]. (A 429's headers are dropped here; use [`identify`] to keep them.)
pub async fn authenticate(req: &mut Request) -> Result<Caller, ApiError> {
    let caller = identify(req).await.map_err(|r| r.error)?;
    authorize(&caller, req)?;
    Ok(caller)
}

/// Who `req` comes from (401 in keys mode without a valid key, 429 past the key's rate
/// limit); the identity headers are set from it, and it is stored on the request
/// ([`caller`]).
pub async fn identify(req: &mut Request) -> Result<Caller, Refusal> {
    let caller = match mode().await? {
        Mode::TrustedHeaders => from_headers(req)?,
        Mode::Keys => {
            let Some(token) = presented(req)? else {
                return Err(unauthorized(
                    "an API key is required: send `Authorization: Bearer tsk_<prefix>_<secret>`",
                )
                .into());
            };
            let caller = lookup(&token).await?;
            set_identity(req, &caller);
            caller
        }
    };
    req.extensions_mut().insert(caller.clone());
    Ok(caller)
}

/// 403 unless `caller` has the role `req`'s route needs ([`policy::required_role`]).
pub fn authorize(caller: &Caller, req: &Request) -> Result<(), ApiError> {
    require_role(
        caller,
        policy::required_role(req.method().as_str(), req.uri().path()),
    )
}

/// As [`identify`], for routes that also take another credential of their own (the
/// feedback component's presigned tokens): `None` in keys mode when no API key was sent —
/// the identity headers are then removed, and the route must prove the caller otherwise.
pub async fn identify_optional(req: &mut Request) -> Result<Option<Caller>, Refusal> {
    if mode().await? == Mode::Keys && presented(req)?.is_none() {
        clear_identity(req);
        return Ok(None);
    }
    identify(req).await.map(Some)
}

/// The caller [`identify`] stored on the request.
pub fn caller(req: &Request) -> Option<&Caller> {
    req.extensions().get::<Caller>()
}

/// The caller's identity to send on with a self request (chat → kb, feedback → kb): the
/// caller's own API key when one was sent — the receiving component checks it again, so
/// nothing a client controls can change who the request is from — and the identity
/// headers as [`identify`] set them (read only in trusted-headers mode).
#[derive(Clone, Debug, Default)]
pub struct Forward(Vec<(&'static str, String)>);

impl Forward {
    pub fn of(req: &Request) -> Forward {
        let mut headers = Vec::new();
        for name in ["authorization", TENANT_HEADER, USER_HEADER, ROLE_HEADER] {
            if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
                headers.push((name, v.to_string()));
            }
        }
        Forward(headers)
    }

    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

/// The API key sent, if any: `None` without `authorization` or with a bearer token that is
/// not key-shaped (another credential); 401 for a malformed header or key.
fn presented(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized(key::KeyFormatError::NotBearer.message()))?;
    let token = key::bearer(value).map_err(|e| unauthorized(e.message()))?;
    if !key::is_key_shaped(token) {
        return Ok(None);
    }
    key::parse(token).map_err(|e| unauthorized(e.message()))?;
    Ok(Some(token.to_string()))
}

fn from_headers(req: &Request) -> Result<Caller, ApiError> {
    let role = match identity_header(req, ROLE_HEADER)? {
        None => Role::Admin,
        Some(text) => Role::parse(&text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_header",
                format!("{ROLE_HEADER} must be admin, operator, member or service"),
                Some(ROLE_HEADER),
            )
        })?,
    };
    Ok(Caller {
        tenant: crate::identity::tenant(req)?,
        user: identity_header(req, USER_HEADER)?,
        role,
        key_prefix: None,
    })
}

/// The key's caller; 401 for an unknown, wrong or revoked key (one message for all three,
/// so the answer does not tell which prefixes exist).
async fn lookup(token: &str) -> Result<Caller, Refusal> {
    let presented = key::parse(token).map_err(|e| unauthorized(e.message()))?;
    // The key names its tenant: the lookup by prefix cannot be scoped to one yet.
    let db = crate::connect_across_tenants().await?;
    let row = pg::one(
        &db,
        "look up the API key",
        "SELECT tenant_id, user_id, role, secret_hash, revoked_at IS NOT NULL,
                last_used_at IS NULL OR last_used_at < now() - interval '1 minute',
                rate_limit_per_minute::int8
         FROM api_keys WHERE prefix = $1",
        vec![pg::P::Str(presented.prefix.to_string())],
    )
    .await?;
    let refused = || {
        Refusal::from(unauthorized(
            "the API key is not valid (unknown, wrong or revoked)",
        ))
    };
    let Some(row) = row else {
        return Err(refused());
    };
    // Verified before the revocation is looked at, so timing says nothing either way.
    let valid = key::verify(presented.secret, &pg::text(&row, 3));
    if !valid || pg::boolean(&row, 4) {
        return Err(refused());
    }
    let role = Role::parse(&pg::text(&row, 2))
        .ok_or_else(|| ApiError::internal("api_keys.role holds an unknown role"))?;
    if pg::boolean(&row, 5) {
        touch(&db, presented.prefix).await;
    }
    if let Some(limit) = pg::opt_int(&row, 6) {
        count(&db, presented.prefix, limit).await?;
    }
    Ok(Caller {
        tenant: pg::text(&row, 0),
        user: pg::opt_text(&row, 1),
        role,
        key_prefix: Some(presented.prefix.to_string()),
    })
}

/// Counts this request in the key's minute (one of [`rate::SHARDS`] rows, chosen at random)
/// and refuses it with 429 past `limit`.
async fn count(db: &Connection, prefix: &str, limit: i64) -> Result<(), Refusal> {
    let shard = (spin_sdk::wasip3::random::random::get_random_u64() % rate::SHARDS as u64) as i64;
    // The other shards as of this statement's snapshot, plus this shard after the increment.
    let row = pg::one(
        db,
        "count the key's requests",
        "WITH counted AS (
             INSERT INTO api_key_usage (prefix, minute, shard, requests)
             VALUES ($1, date_trunc('minute', now()), $2::int8::int2, 1)
             ON CONFLICT (prefix, minute, shard)
             DO UPDATE SET requests = api_key_usage.requests + 1
             RETURNING requests)
         SELECT (SELECT requests FROM counted)::int8
                + coalesce((SELECT sum(requests) FROM api_key_usage
                            WHERE prefix = $1 AND minute = date_trunc('minute', now())
                              AND shard <> $2::int8::int2), 0)::int8,
                extract(second FROM now())::int8",
        vec![pg::P::Str(prefix.to_string()), pg::P::Int64(shard)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("count the key's requests: no row"))?;
    rate::check(
        limit,
        pg::int(&row, 0),
        pg::int(&row, 1).clamp(0, 59) as u32,
    )
    .map_err(|l| {
        let mut error = ApiError::new(
            429,
            "rate_limited",
            format!(
                "this key may make {} requests per minute; try again in {} s",
                l.limit, l.reset_s
            ),
        )
        .with_field("authorization");
        error.retry_after = Some(l.reset_s);
        Refusal {
            error,
            headers: l.headers(),
        }
    })
}

/// `last_used_at`, at most once a minute per key, so authentication writes no hot row.
async fn touch(db: &Connection, prefix: &str) {
    if let Err(e) = pg::execute(
        db,
        "record the key's use",
        "UPDATE api_keys SET last_used_at = now() WHERE prefix = $1",
        vec![pg::P::Str(prefix.to_string())],
    )
    .await
    {
        eprintln!("auth: {}", e.message);
    }
}

fn clear_identity(req: &mut Request) {
    let headers = req.headers_mut();
    for name in [TENANT_HEADER, USER_HEADER, ROLE_HEADER] {
        headers.remove(name);
    }
}

fn set_identity(req: &mut Request, caller: &Caller) {
    clear_identity(req);
    let headers = req.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        // Stored values passed the same check when the key was made.
        if valid_identity(value)
            && let Ok(v) = http::HeaderValue::from_str(value)
        {
            headers.insert(name, v);
        }
    };
    set(TENANT_HEADER, &caller.tenant);
    if let Some(user) = &caller.user {
        set(USER_HEADER, user);
    }
    set(ROLE_HEADER, caller.role.as_str());
}

/// One audit row for a state-changing request, taken before the request is consumed and
/// written once its outcome is known ([`Audit::finish`]). Reads are not recorded.
pub struct Audit {
    caller: Caller,
    method: String,
    route: String,
    request_id: Option<String>,
}

impl Audit {
    /// `None` for reads.
    pub fn start(caller: &Caller, req: &Request) -> Option<Audit> {
        let method = req.method().as_str().to_string();
        policy::is_write(&method).then(|| Audit {
            caller: caller.clone(),
            method,
            route: req.uri().path().chars().take(512).collect(),
            request_id: crate::request_id(req),
        })
    }

    /// Writes the row: the answer's `status`, and `target` (the id the request created or
    /// changed, when the answer names one). A failure to write is logged, not answered: the
    /// change it records has already happened.
    pub async fn finish(self, status: u16, target: Option<String>) {
        let result = async {
            let db = crate::connect(&self.caller.tenant).await?;
            pg::execute(
                &db,
                "write the audit row",
                "INSERT INTO audit_log
                   (tenant_id, key_prefix, user_id, role, method, route, target_id, status, request_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                vec![
                    pg::P::Str(self.caller.tenant.clone()),
                    pg::opt_str(self.caller.key_prefix.as_deref()),
                    pg::opt_str(self.caller.user.as_deref()),
                    pg::P::Str(self.caller.role.as_str().to_string()),
                    pg::P::Str(self.method.clone()),
                    pg::P::Str(self.route.clone()),
                    pg::opt_str(target.as_deref()),
                    pg::P::Int32(i32::from(status)),
                    pg::opt_str(self.request_id.as_deref()),
                ],
            )
            .await
        }
        .await;
        if let Err(e) = result {
            eprintln!(
                "audit: {} {} by {:?} not recorded: {}",
                self.method, self.route, self.caller.key_prefix, e.message
            );
        }
    }
}

/// Finishes `audit` (when the request was a write) with a JSON handler's outcome: its
/// status, and the id its answer names.
pub async fn record(
    audit: Option<Audit>,
    result: &Result<(spin_sdk::http::StatusCode, serde_json::Value), ApiError>,
) {
    if let Some(audit) = audit {
        let (status, target) = match result {
            Ok((status, body)) => (status.as_u16(), target_of(body)),
            Err(e) => (e.status, None),
        };
        audit.finish(status, target).await;
    }
}

/// The id an answer names (`id`, else `prefix`), for [`Audit::finish`].
pub fn target_of(body: &serde_json::Value) -> Option<String> {
    ["id", "prefix"].iter().find_map(|k| match &body[*k] {
        serde_json::Value::String(s) => Some(s.chars().take(128).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("keys"), Some(Mode::Keys));
        assert_eq!(Mode::parse(""), Some(Mode::Keys));
        assert_eq!(Mode::parse("trusted-headers"), Some(Mode::TrustedHeaders));
        assert_eq!(Mode::parse("none"), None);
    }

    fn caller(role: Role, user: Option<&str>) -> Caller {
        Caller {
            tenant: "t".into(),
            user: user.map(str::to_string),
            role,
            key_prefix: None,
        }
    }

    #[test]
    fn members_act_only_for_themselves() {
        assert!(caller(Role::Member, Some("u1")).may_act_for("u1"));
        assert!(!caller(Role::Member, Some("u1")).may_act_for("u2"));
        assert!(!caller(Role::Member, None).may_act_for("anonymous"));
        assert!(!caller(Role::Service, Some("u1")).may_act_for("u2"));
        assert!(caller(Role::Operator, Some("u1")).may_act_for("u2"));
        assert!(caller(Role::Admin, None).may_act_for("u2"));
    }

    #[test]
    fn require_role_names_the_role_needed() {
        let e = require_role(&caller(Role::Member, None), Role::Operator).unwrap_err();
        assert_eq!(e.status, 403);
        assert_eq!(e.code, "forbidden");
        assert!(e.message.contains("operator"), "{}", e.message);
        assert!(require_role(&caller(Role::Admin, None), Role::Operator).is_ok());
    }

    #[test]
    fn the_target_is_the_answer_id() {
        assert_eq!(
            target_of(&serde_json::json!({"id": "abc"})),
            Some("abc".into())
        );
        assert_eq!(target_of(&serde_json::json!({"id": 7})), Some("7".into()));
        assert_eq!(
            target_of(&serde_json::json!({"prefix": "p"})),
            Some("p".into())
        );
        assert_eq!(target_of(&serde_json::json!({"ok": true})), None);
    }
}
