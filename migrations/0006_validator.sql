-- The validator: per-tenant risk limits and breaker rules, the audit of every validation,
-- portfolio snapshots and closed trades (what the circuit breaker reads), and the breaker's
-- state and transitions. Every row carries tenant_id.

CREATE TABLE validator_limits (
    tenant_id     text        PRIMARY KEY,
    -- tessera_validation::trade::RiskLimits and ::breaker::BreakerRules, as JSON.
    limits        jsonb       NOT NULL,
    breaker_rules jsonb       NOT NULL,
    updated_by    text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every validation with its inputs and its answer (trade verdicts, formula sheets, models).
CREATE TABLE validations (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('trade', 'formula', 'model')),
    -- trade: approve | approve_with_warnings | reject; formula and model: valid | invalid.
    verdict    text        NOT NULL,
    symbol     text,
    input      jsonb       NOT NULL,
    result     jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX validations_tenant_time ON validations (tenant_id, created_at DESC, id);

-- The account after a trading cycle, as the trading bot reports it.
CREATE TABLE portfolio_snapshots (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text             NOT NULL,
    equity      double precision NOT NULL CHECK (equity > 0),
    cash        double precision NOT NULL,
    day_pnl     double precision NOT NULL DEFAULT 0,
    positions   jsonb            NOT NULL DEFAULT '[]',
    -- Whether the trading cycle that produced it failed (NULL: not reported).
    cycle_error boolean,
    taken_at    timestamptz      NOT NULL DEFAULT now(),
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX portfolio_snapshots_tenant_time ON portfolio_snapshots (tenant_id, taken_at DESC);

-- Closed trades and their outcomes: streaks for the breaker, and (with an embedding of the
-- setup) the similar past losers a trade validation warns about. Named apart from the
-- picker's `trades` so both can land in either order.
CREATE TABLE validator_trades (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text             NOT NULL,
    snapshot_id uuid             REFERENCES portfolio_snapshots (id) ON DELETE SET NULL,
    symbol      text             NOT NULL,
    pnl         double precision NOT NULL,
    setup       text,
    embedding   vector(384),
    closed_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX validator_trades_tenant_time ON validator_trades (tenant_id, closed_at DESC);
CREATE INDEX validator_trades_embedding ON validator_trades USING hnsw (embedding vector_cosine_ops);

CREATE TABLE circuit_breakers (
    tenant_id  text        PRIMARY KEY,
    state      text        NOT NULL DEFAULT 'closed'
                           CHECK (state IN ('closed', 'open', 'awaiting_approval')),
    reason     text,
    since      timestamptz NOT NULL DEFAULT now()
);

-- Every transition with its reason and the numbers behind it (the alerts issue delivers them).
CREATE TABLE circuit_breaker_events (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    from_state text        NOT NULL,
    to_state   text        NOT NULL,
    trigger    text        NOT NULL CHECK (trigger IN ('activation', 'auto_resume_check', 'operator_resume')),
    reason     text        NOT NULL,
    metrics    jsonb       NOT NULL DEFAULT '{}',
    actor      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX circuit_breaker_events_tenant_time ON circuit_breaker_events (tenant_id, created_at DESC);
