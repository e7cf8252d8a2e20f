-- API keys, the audit log and per-key request counters (issue 16; docs/adr/0013-api-keys.md).
-- Components authenticate callers themselves (tessera_spin_kit::auth) against these tables.

-- A key is `tsk_<prefix>_<secret>`: the prefix is stored and shown; of the 256-bit random
-- secret only its SHA-256 (hex) is stored, so a copy of this table lets no one in.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL,
    prefix        text        NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
    secret_hash   text        NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    role          text        NOT NULL CHECK (role IN ('admin', 'operator', 'member', 'service')),
    -- The user the key acts as (members see only their own conversations and feedback).
    user_id       text,
    name          text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Updated at most once a minute per key (no write per request).
    last_used_at  timestamptz,
    -- Refused from the first request after this is set (every request looks the key up).
    revoked_at    timestamptz,
    -- The key this one replaced by rotation, if any.
    rotated_from  text,
    -- Requests per minute; NULL: no limit.
    rate_limit_per_minute integer CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0)
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- One row per state-changing request, written once its outcome is known. Append-only:
-- the triggers below refuse UPDATE, DELETE and TRUNCATE for every role (the application
-- connects as the database owner, which a REVOKE would not restrict).
CREATE TABLE audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    tenant_id   text        NOT NULL,
    key_prefix  text,
    user_id     text,
    role        text        NOT NULL,
    method      text        NOT NULL,
    route       text        NOT NULL,
    target_id   text,
    status      integer     NOT NULL,
    request_id  text
);

CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Requests per key and minute, counted in one of a few shards chosen at random so that a
-- busy key does not serialise its requests on one row; the limit check sums the shards.
CREATE TABLE api_key_usage (
    prefix   text        NOT NULL,
    minute   timestamptz NOT NULL,
    shard    smallint    NOT NULL,
    requests integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (prefix, minute, shard)
);
