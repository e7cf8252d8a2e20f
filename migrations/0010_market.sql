-- Picker (tessera-picking over functions/picker): market data, discovery runs and their
-- suggestions, the watchlist and its change log, executed trades and market-condition
-- snapshots with their embeddings, and the forward returns the scorecard is built from.
-- Every row carries tenant_id.

-- A tradable instrument; everything past the ticker may be unknown (NULL), and the pickers
-- report such a symbol as `unavailable` rather than guess.
CREATE TABLE market_symbols (
    tenant_id   text             NOT NULL,
    ticker      text             NOT NULL,
    name        text,
    asset_class text             CHECK (asset_class IN ('stock', 'etf', 'option', 'crypto')),
    exchange    text,
    sector      text,
    market_cap  double precision CHECK (market_cap >= 0),
    beta        double precision,
    avg_spread  double precision CHECK (avg_spread >= 0 AND avg_spread < 1),
    -- Made by tessera-picking's generator (synth.rs), never a real listing.
    generated   boolean          NOT NULL DEFAULT false,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ticker)
);

-- OHLCV bars. Daily bars are stamped 00:00 UTC of their trading date, minute bars at the
-- start of their minute (checked by tessera-picking before they get here). The symbol must
-- exist: the component checks it for the whole batch before writing (a foreign key checked
-- row by row cost a third of bulk-ingest time). Every read goes through the primary key,
-- symbol by symbol (a second index on time cost another fifth), so no other index.
CREATE TABLE market_bars (
    tenant_id text             NOT NULL,
    symbol    text             NOT NULL,
    interval  text             NOT NULL CHECK (interval IN ('1m', '1d')),
    time      timestamptz      NOT NULL,
    open      double precision NOT NULL CHECK (open >= 0),
    high      double precision NOT NULL CHECK (high >= low),
    low       double precision NOT NULL CHECK (low >= 0),
    close     double precision NOT NULL CHECK (close >= 0),
    volume    double precision NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (tenant_id, symbol, interval, time)
);

-- Per-tenant picker settings (tessera-picking's configs as JSON; absent: the defaults).
CREATE TABLE discovery_settings (
    tenant_id  text        PRIMARY KEY,
    settings   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One discovery run: what each picker did (ran, skipped and why, failed), the ensemble's
-- divergences and the symbols nobody could score.
CREATE TABLE discovery_runs (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL,
    status      text        NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'succeeded', 'failed')),
    trigger     text        NOT NULL CHECK (trigger IN ('api', 'cron')),
    as_of       date,
    settings    jsonb       NOT NULL DEFAULT '{}',
    pickers     jsonb       NOT NULL DEFAULT '{}',
    divergences jsonb       NOT NULL DEFAULT '[]',
    unscored    jsonb       NOT NULL DEFAULT '[]',
    symbols     integer     NOT NULL DEFAULT 0,
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- At most one running run per tenant: a second insert fails on this index (answered 409),
-- so two hosts or two instances cannot both start one.
CREATE UNIQUE INDEX discovery_runs_one_running ON discovery_runs (tenant_id) WHERE status = 'running';
CREATE INDEX discovery_runs_recent ON discovery_runs (tenant_id, started_at DESC);

-- A run's ranked symbols: the ensemble's top ones and each picker's own top ones
-- (`sources`), with every picker's score, verdict and reasons (`contributions`).
CREATE TABLE discovery_suggestions (
    id            uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text             NOT NULL,
    run_id        uuid             NOT NULL REFERENCES discovery_runs (id) ON DELETE CASCADE,
    ticker        text             NOT NULL,
    rank          integer          NOT NULL,
    score         double precision NOT NULL,
    rejected_by   text[]           NOT NULL DEFAULT '{}',
    -- 'ensemble', 'metric', 'fuzzy', 'llm': whose top picks this symbol was.
    sources       text[]           NOT NULL DEFAULT '{}',
    contributions jsonb            NOT NULL,
    suggested_on  date             NOT NULL,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (run_id, ticker)
);
CREATE INDEX discovery_suggestions_run ON discovery_suggestions (tenant_id, run_id, rank);

-- Close-to-close forward returns of a suggestion (entry at the close of the first trading
-- day after it), with the universe's equal-weight return over the same days.
CREATE TABLE suggestion_returns (
    suggestion_id   uuid             NOT NULL REFERENCES discovery_suggestions (id) ON DELETE CASCADE,
    tenant_id       text             NOT NULL,
    horizon         integer          NOT NULL CHECK (horizon IN (1, 5, 20)),
    forward_return  double precision NOT NULL,
    universe_return double precision NOT NULL,
    filled_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (suggestion_id, horizon)
);
CREATE INDEX suggestion_returns_tenant ON suggestion_returns (tenant_id, horizon);

CREATE TABLE watchlist (
    tenant_id text             NOT NULL,
    ticker    text             NOT NULL,
    origin    text             NOT NULL CHECK (origin IN ('manual', 'discovered')),
    score     double precision,
    added_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ticker)
);

-- Every change to the watchlist (tessera-picking's watchlist::Change).
CREATE TABLE watchlist_changes (
    id        bigserial        PRIMARY KEY,
    tenant_id text             NOT NULL,
    ticker    text             NOT NULL,
    kind      text             NOT NULL
                               CHECK (kind IN ('added', 'removed', 'evicted', 'promoted', 'rescored')),
    origin    text             NOT NULL,
    score     double precision,
    run_id    uuid             REFERENCES discovery_runs (id) ON DELETE SET NULL,
    at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX watchlist_changes_recent ON watchlist_changes (tenant_id, id DESC);

-- Executed trades, with the embedding of their formatted description: the FuzzyPicker's
-- similar past trades.
CREATE TABLE picker_trades (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text             NOT NULL,
    symbol      text             NOT NULL,
    side        text             NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity    double precision NOT NULL CHECK (quantity > 0),
    price       double precision NOT NULL CHECK (price > 0),
    reasoning   text             NOT NULL DEFAULT '',
    executed_at timestamptz      NOT NULL DEFAULT now(),
    exit_price  double precision CHECK (exit_price > 0),
    exited_at   timestamptz,
    outcome     text,
    -- Realised return of the closed trade (side-aware), e.g. 0.04 = +4 %.
    return_pct  double precision,
    description text             NOT NULL,
    embedding   vector(384)      NOT NULL,
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX picker_trades_recent ON picker_trades (tenant_id, executed_at DESC);
CREATE INDEX picker_trades_embedding ON picker_trades USING hnsw (embedding vector_cosine_ops);

-- Hourly market-condition snapshots (index trend, realised volatility, breadth, sector
-- returns) with the embedding of their description.
CREATE TABLE market_snapshots (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL,
    as_of       date        NOT NULL,
    conditions  jsonb       NOT NULL,
    description text        NOT NULL,
    embedding   vector(384) NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX market_snapshots_recent ON market_snapshots (tenant_id, taken_at DESC);
CREATE INDEX market_snapshots_embedding ON market_snapshots USING hnsw (embedding vector_cosine_ops);
