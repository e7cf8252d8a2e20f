-- Inbound webhooks handed to their capability (issue 15): after an event is stored, a type
-- its source accepts goes to the picker or the knowledge base through their own API. What
-- came of it is kept on the event: `pending` until tried, `done`, `rejected` (the capability
-- refused the event: a 4xx, final) or `failed` (tried again when the sender retries).
ALTER TABLE webhook_events
    ADD COLUMN event_type       text,
    ADD COLUMN handoff_status   text CHECK (handoff_status IN ('pending', 'done', 'rejected', 'failed')),
    ADD COLUMN handoff_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN handoff_result   jsonb,
    ADD COLUMN handed_off_at    timestamptz;
