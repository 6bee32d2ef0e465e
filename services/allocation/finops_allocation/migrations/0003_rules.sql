-- Cost facts: the cost of each facet (the distinct dimensions and tags allocation rules can see) per billing
-- account, period, source file, charge day and currency. Rules run on facts, so changing the rules re-allocates
-- every open period without the cost lines, and a period's allocation is a function of (facts, rules).
CREATE TABLE facet (
    facet_id   bigserial PRIMARY KEY,
    facet_hash bytea NOT NULL UNIQUE,
    dims       jsonb NOT NULL,
    tags       jsonb NOT NULL
);

CREATE TABLE cost_fact (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    charge_date          date        NOT NULL,
    billing_currency     char(3)     NOT NULL,
    facet_id             bigint      NOT NULL REFERENCES facet,
    billed_cost          numeric     NOT NULL,
    effective_cost       numeric     NOT NULL,
    line_count           bigint      NOT NULL,
    PRIMARY KEY (billing_account_id, billing_period_start, ingest_id, charge_date, billing_currency, facet_id)
);

-- Rule sets are versioned; the newest is in force. Each allocation line names the version that made it.
CREATE TABLE ruleset (
    version    serial      PRIMARY KEY,
    body       jsonb       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The allocation of each billing period under the rules in force: direct lines, and shares of shared pools.
CREATE TABLE allocation_line (
    billing_period_start timestamptz NOT NULL,
    billing_account_id   text        NOT NULL,
    billing_currency     char(3)     NOT NULL,
    cost_center          text        NOT NULL,
    team                 text        NOT NULL,
    product              text        NOT NULL,
    environment          text        NOT NULL,
    kind                 text        NOT NULL CHECK (kind IN ('direct', 'shared', 'adjustment')),
    pool                 text,
    adjusts_period       timestamptz,
    billed_cost          numeric     NOT NULL,
    effective_cost       numeric     NOT NULL,
    line_count           bigint      NOT NULL,
    ruleset_version      integer     NOT NULL
);
CREATE INDEX allocation_line_period ON allocation_line (billing_period_start);

-- Closing a period locks it: its lines are copied here and never change; a later restatement of it becomes
-- adjustment lines in the next open period.
CREATE TABLE period_close (
    billing_period_start timestamptz PRIMARY KEY,
    closed_by            text        NOT NULL,
    closed_at            timestamptz NOT NULL DEFAULT now(),
    journal_id           uuid        NOT NULL,
    journal_csv          bytea       NOT NULL,
    journal_json         bytea       NOT NULL
);

CREATE TABLE closed_allocation_line (LIKE allocation_line);
CREATE INDEX closed_allocation_line_period ON closed_allocation_line (billing_period_start);
