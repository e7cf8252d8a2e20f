-- Alert triggers from the rest of the application.
--
-- The inbox: any component raises an alert event by inserting a row here in the same
-- transaction as whatever caused it (tessera_spin_kit::alert_inbox), so the event exists if
-- and only if its cause committed; the alert component's dispatcher tick routes pending rows
-- into events, groups and deliveries (functions/alert/src/inbox.rs) within about a second.
CREATE TABLE alert_inbox (
    id              bigserial   PRIMARY KEY,
    tenant_id       text        NOT NULL,
    type            text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    labels          jsonb       NOT NULL DEFAULT '{}',
    summary         text,
    payload         jsonb       NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    routed_at       timestamptz,
    -- Why a row could not become an event (e.g. a bad label name); it is not retried.
    error           text
);
CREATE INDEX alert_inbox_pending ON alert_inbox (id) WHERE routed_at IS NULL;

-- The price-move monitor (functions/alert/src/monitor.rs over tessera-alerting's monitor):
-- when it last scanned, so however many dispatcher ticks run at once only one scans per
-- interval, and each symbol's last alert, for the cooldown.
CREATE TABLE alert_monitor_clock (
    id           integer PRIMARY KEY CHECK (id = 1),
    -- Unix milliseconds of the last scan's start; 0 before the first.
    last_scan_ms bigint  NOT NULL DEFAULT 0,
    scans        bigint  NOT NULL DEFAULT 0
);
INSERT INTO alert_monitor_clock (id) VALUES (1);

CREATE TABLE alert_monitor_cooldowns (
    tenant_id     text   NOT NULL,
    symbol        text   NOT NULL,
    last_alert_ms bigint NOT NULL,
    PRIMARY KEY (tenant_id, symbol)
);

-- The scan reads the last window of minute bars of every tenant.
CREATE INDEX market_bars_recent_minutes ON market_bars (time) WHERE interval = '1m';

-- The daily P&L summary (functions/alert/src/daily.rs): one row per New York day once its
-- summaries are raised, claimed in the transaction that raises them.
CREATE TABLE alert_daily_summaries (
    day       date        PRIMARY KEY,
    tenants   integer     NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now()
);
