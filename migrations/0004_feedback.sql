-- Feedback on assistant messages (thumbs, score, a corrected answer, comment, tags), the
-- nightly feedback reports, and what learning needs: the persona each answer was written for
-- and each user's success statistics.

CREATE TABLE feedback (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            text        NOT NULL,
    message_id           uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id      uuid        NOT NULL,
    -- Who rated: x-user-id, or the conversation's owner for a presigned token.
    user_id              text        NOT NULL,
    rating               text        NOT NULL CHECK (rating IN ('up', 'down')),
    score                double precision CHECK (score >= 0 AND score <= 1),
    -- A correction of the answer (what an operator may promote into the kb).
    edited_text          text,
    comment              text,
    tags                 text[]      NOT NULL DEFAULT '{}',
    -- How it arrived: 'api' (trusted headers) or 'token' (a browser with a presigned token).
    via                  text        NOT NULL CHECK (via IN ('api', 'token')),
    -- One current row per user and message; a later one replaces it and the old one stays
    -- as history (current = false, superseded_at set).
    current              boolean     NOT NULL DEFAULT true,
    superseded_at        timestamptz,
    promoted_document_id uuid,
    promoted_by          text,
    promoted_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX feedback_current ON feedback (message_id, user_id) WHERE current;
CREATE INDEX feedback_tenant_time ON feedback (tenant_id, created_at) WHERE current;
CREATE INDEX feedback_user ON feedback (tenant_id, user_id) WHERE current;

-- Reports computed by the nightly cron (feedback-report) for complete UTC days; the
-- endpoint serves one when the range and scope match, and computes the rest on demand.
CREATE TABLE feedback_reports (
    tenant_id   text        NOT NULL,
    scope       text        NOT NULL,
    from_day    date        NOT NULL,
    to_day      date        NOT NULL,
    threshold   real        NOT NULL,
    report      jsonb       NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope, from_day, to_day, threshold)
);

-- The persona (skill level) an answer was written for, so votes can be credited to it.
ALTER TABLE messages ADD COLUMN persona text;

-- tessera-feedback's SuccessStats: {"personas": {p: {up, down}}, "models": {m: {up, down}}},
-- recomputed from the user's current feedback on every rating.
ALTER TABLE user_profiles ADD COLUMN feedback_stats jsonb NOT NULL DEFAULT '{}';
