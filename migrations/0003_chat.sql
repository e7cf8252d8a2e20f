-- The chat step: user profiles, conversations, messages, steps (every version kept), every
-- model call, the response cache and the circuit breaker of each provider.

CREATE TABLE user_profiles (
    tenant_id             text        NOT NULL,
    user_id               text        NOT NULL,
    skill_level           text        NOT NULL DEFAULT 'intermediate'
                                      CHECK (skill_level IN ('beginner', 'intermediate', 'expert')),
    tier                  text        NOT NULL DEFAULT 'free'
                                      CHECK (tier IN ('free', 'premium', 'enterprise')),
    -- The user's own monthly cap on platform-paid calls; NULL: the plan's quota alone.
    monthly_budget_micros bigint      CHECK (monthly_budget_micros >= 0),
    -- Bring-your-own-key: provider id -> {"nonce": hex, "ciphertext": hex}, ChaCha20-Poly1305
    -- under the component variable `key_encryption_key`. Never returned by the API.
    provider_keys         jsonb       NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE conversations (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    user_id    text        NOT NULL,
    title      text        NOT NULL DEFAULT '',
    -- Optional project/page context: {"project": …, "page": …}; a page scopes kb search.
    context    jsonb       NOT NULL DEFAULT '{}',
    -- The number the next step gets (steps are numbered 1, 2, … per conversation).
    next_step  integer     NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_owner ON conversations (tenant_id, user_id, created_at DESC);

CREATE TABLE messages (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    role            text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'completed'
                                CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    -- An assistant message answers this user message.
    reply_to        uuid        REFERENCES messages (id) ON DELETE CASCADE,
    -- A user message's embedding (all-MiniLM-L6-v2): relevant history for later turns.
    embedding       vector(384),
    -- An assistant message's turn: the analysis and the numbered kb sources all steps cite.
    analysis        jsonb,
    sources         jsonb       NOT NULL DEFAULT '[]',
    input_tokens    bigint      NOT NULL DEFAULT 0,
    output_tokens   bigint      NOT NULL DEFAULT 0,
    cost_micros     bigint      NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

CREATE TABLE steps (
    id              bigserial   PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    -- The step's number in the conversation (`/steps/{n}/edit`), stable across versions.
    n               integer     NOT NULL,
    version         integer     NOT NULL DEFAULT 1,
    -- Older versions stay, with current = false.
    current         boolean     NOT NULL DEFAULT true,
    ordinal         integer     NOT NULL,
    kind            text        NOT NULL
                                CHECK (kind IN ('analysis', 'planning', 'implementation', 'validation', 'synthesis')),
    title           text        NOT NULL DEFAULT '',
    status          text        NOT NULL
                                CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    inputs          jsonb       NOT NULL DEFAULT '{}',
    output          jsonb,
    output_text     text,
    provider        text,
    model           text,
    input_tokens    bigint      NOT NULL DEFAULT 0,
    output_tokens   bigint      NOT NULL DEFAULT 0,
    cost_micros     bigint      NOT NULL DEFAULT 0,
    cache_hit       text        NOT NULL DEFAULT 'miss' CHECK (cache_hit IN ('miss', 'exact', 'semantic')),
    -- Step numbers whose output this step reads.
    depends_on      integer[]   NOT NULL DEFAULT '{}',
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz,
    duration_ms     integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, n, version)
);
CREATE UNIQUE INDEX steps_current ON steps (conversation_id, n) WHERE current;
CREATE INDEX steps_message ON steps (message_id, ordinal) WHERE current;

-- Every model call: each attempt, cached answer, local answer and refused call.
CREATE TABLE llm_calls (
    id              bigserial   PRIMARY KEY,
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    conversation_id uuid,
    message_id      uuid,
    step_id         bigint,
    step_kind       text,
    provider        text        NOT NULL,
    model           text        NOT NULL,
    input_tokens    bigint      NOT NULL DEFAULT 0,
    output_tokens   bigint      NOT NULL DEFAULT 0,
    usage_estimated boolean     NOT NULL DEFAULT false,
    cost_micros     bigint      NOT NULL DEFAULT 0,
    latency_ms      integer     NOT NULL DEFAULT 0,
    cache_hit       text        NOT NULL DEFAULT 'miss' CHECK (cache_hit IN ('miss', 'exact', 'semantic')),
    status          text        NOT NULL,
    attempt         integer     NOT NULL DEFAULT 1,
    http_status     integer,
    error           text,
    -- Paid with the user's own key: not counted against platform budgets.
    user_key        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_tenant_time ON llm_calls (tenant_id, created_at);
CREATE INDEX llm_calls_user_time ON llm_calls (tenant_id, user_id, created_at);

-- Answers of paid steps, by exact key and by embedding of the step's question.
CREATE TABLE response_cache (
    id         bigserial   PRIMARY KEY,
    tenant_id  text        NOT NULL,
    step_kind  text        NOT NULL,
    cache_key  text        NOT NULL,
    -- Semantic hits match only within a scope (an implementation step's task number), so a
    -- similar question never returns another task's answer.
    scope      text        NOT NULL DEFAULT '',
    provider   text        NOT NULL,
    model      text        NOT NULL,
    embedding  vector(384),
    -- {"text": …, "citations": [[n, chunk_id], …], "input_tokens": …, "output_tokens": …}
    value      jsonb       NOT NULL,
    hits       integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX response_cache_key ON response_cache (tenant_id, cache_key);
CREATE INDEX response_cache_embedding ON response_cache USING hnsw (embedding vector_cosine_ops);
CREATE INDEX response_cache_expiry ON response_cache (expires_at);

-- One circuit breaker per provider (tessera-gateway's BreakerState as JSON), updated by
-- compare-and-set on `version` so concurrent instances never lose an outcome.
CREATE TABLE provider_breakers (
    provider   text        PRIMARY KEY,
    state      jsonb       NOT NULL,
    version    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
