-- Alerts (tessera-alerting over functions/alert): channels, rules, silences, the events
-- raised, their aggregation groups, the delivery outbox; and inbound webhooks
-- (functions/webhooks). Every row carries tenant_id.

-- Where notifications go. A secret is never stored or returned: `secret_variable` names
-- the Spin variable of the alert component that holds it (a `whsec_` signing secret for
-- webhooks, the server token for Postmark e-mail).
CREATE TABLE alert_channels (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            text        NOT NULL,
    name                 text        NOT NULL,
    kind                 text        NOT NULL CHECK (kind IN ('discord', 'slack', 'email', 'webhook')),
    url                  text        NOT NULL,
    -- Kind-specific settings, e.g. e-mail's {from, to, message_stream}.
    config               jsonb       NOT NULL DEFAULT '{}',
    secret_variable      text,
    -- tessera-alerting's EndpointHealth: disabled after repeated failed deliveries.
    consecutive_failed_deliveries integer NOT NULL DEFAULT 0,
    disabled             boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- A tessera-alerting Rule (event_types, matchers, channels, group_by, timing, enabled) as
-- its JSON, so the domain type is the one definition of its fields.
CREATE TABLE alert_rules (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    rule       jsonb       NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE alert_silences (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    -- Matchers in their text form (`symbol="AAPL"`).
    matchers   jsonb       NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by text        NOT NULL DEFAULT '',
    comment    text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_silences_active ON alert_silences (tenant_id, ends_at);

-- Every event raised. `duplicate`: it refreshed an alert already firing in every group it
-- joined (same fingerprint), so it caused no new notification.
CREATE TABLE alert_events (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text        NOT NULL,
    type            text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    labels          jsonb       NOT NULL DEFAULT '{}',
    summary         text,
    payload         jsonb       NOT NULL DEFAULT 'null',
    fingerprint     text        NOT NULL,
    group_keys      text[]      NOT NULL DEFAULT '{}',
    duplicate       boolean     NOT NULL DEFAULT false,
    -- The caller's idempotency key: posting the same event twice stores it once.
    idempotency_key text,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_events_idempotency ON alert_events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX alert_events_recent ON alert_events (tenant_id, received_at DESC);
CREATE INDEX alert_events_fingerprint ON alert_events (tenant_id, fingerprint);

-- tessera-alerting's AlertGroup state between cron ticks; `next_flush_at` is its next
-- wake-up, so the dispatcher finds due groups by index.
CREATE TABLE alert_groups (
    tenant_id     text        NOT NULL,
    group_key     text        NOT NULL,
    rule_id       uuid        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    state         jsonb,
    next_flush_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_key)
);
CREATE INDEX alert_groups_due ON alert_groups (next_flush_at);

-- The outbox: one row per notification and channel. `webhook_id` (the delivery id) is the
-- same on every attempt, so receivers deduplicate; it is derived from the group's flush,
-- so writing a flush twice cannot make a second delivery. `body` is rendered once with the
-- channel's template, so every attempt sends (and signs) the same bytes.
CREATE TABLE alert_deliveries (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text        NOT NULL,
    channel_id      uuid        NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    webhook_id      text        NOT NULL,
    group_key       text        NOT NULL,
    rule_id         uuid,
    kind            text        NOT NULL,
    fingerprints    text[]      NOT NULL DEFAULT '{}',
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, webhook_id)
);
-- Claiming due deliveries (FOR UPDATE SKIP LOCKED) reads only pending rows, oldest first.
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_tenant ON alert_deliveries (tenant_id, created_at DESC);
CREATE INDEX alert_deliveries_fingerprints ON alert_deliveries USING gin (fingerprints);

-- Inbound webhooks, stored raw before anything else happens; the sender's event id makes
-- a replay a no-op.
CREATE TABLE webhook_events (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL,
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    body        bytea       NOT NULL,
    content_type text,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source, event_id)
);
