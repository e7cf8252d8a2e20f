-- Migration 0015: event discovery requests (issue 15) and in-order delivery per endpoint.
-- Event discovery runs (issue 15): the price-move monitor asks the picker for a discovery
-- run in the same transaction as the `price.move` alert, so neither happens without the
-- other. The picker takes every pending request of a tenant into one run (several moves at
-- once make one run); a claim older than five minutes (a run cut off) is taken again.
CREATE TABLE discovery_requests (
    id           bigserial   PRIMARY KEY,
    tenant_id    text        NOT NULL,
    symbol       text        NOT NULL,
    reason       text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}',
    requested_at timestamptz NOT NULL DEFAULT now(),
    claimed_at   timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    run_id       uuid,
    outcome      jsonb,
    handled_at   timestamptz
);
CREATE INDEX discovery_requests_pending ON discovery_requests (tenant_id, id) WHERE handled_at IS NULL;

-- The dispatcher sends each endpoint's deliveries in order: it looks for an older pending
-- delivery of the same channel before taking one.
CREATE INDEX alert_deliveries_channel_pending ON alert_deliveries (channel_id, created_at, id)
    WHERE status = 'pending';

-- A run may now also be started by an event (a price move).
ALTER TABLE discovery_runs DROP CONSTRAINT discovery_runs_trigger_check;
ALTER TABLE discovery_runs ADD CONSTRAINT discovery_runs_trigger_check
    CHECK (trigger IN ('api', 'cron', 'event'));

-- Ordered endpoints (the default) get their deliveries one at a time in the order written;
-- unordered ones concurrently, for receivers that deduplicate and do not care about order.
ALTER TABLE alert_channels ADD COLUMN ordered boolean NOT NULL DEFAULT true;
