-- Read models of the console. Everything here is derived from events; nothing is another service's table.

-- Cost: each batch is pre-aggregated per day and dimension into cost_stage (COPY), and when its billing period
-- completes the newest version's rows become the counted facts (cost_day, and cost_month for monthly queries).
CREATE TABLE cost_batch (
    ingest_id   uuid    NOT NULL,
    batch_seq   integer NOT NULL,
    billing_account_id text NOT NULL,
    period      date    NOT NULL,
    line_count  integer NOT NULL,
    PRIMARY KEY (ingest_id, batch_seq)
);

CREATE TABLE cost_stage (
    ingest_id          uuid    NOT NULL,
    billing_account_id text    NOT NULL,
    period             date    NOT NULL,
    day                date    NOT NULL,
    provider           text    NOT NULL,
    service            text    NOT NULL,
    team               text    NOT NULL,
    cost_center        text    NOT NULL,
    product            text    NOT NULL,
    currency           text    NOT NULL,
    billed_cost        numeric NOT NULL,
    effective_cost     numeric NOT NULL,
    line_count         bigint  NOT NULL
);
CREATE INDEX cost_stage_version ON cost_stage (ingest_id, billing_account_id, period);

CREATE TABLE cost_version (
    billing_account_id text        NOT NULL,
    period             date        NOT NULL,
    ingest_id          uuid        NOT NULL,
    version            integer     NOT NULL,
    provider           text        NOT NULL,
    line_count         bigint      NOT NULL,
    totals             jsonb       NOT NULL,
    completed_at       timestamptz NOT NULL,
    PRIMARY KEY (billing_account_id, period)
);

CREATE TABLE cost_day (
    billing_account_id text    NOT NULL,
    period             date    NOT NULL,
    day                date    NOT NULL,
    provider           text    NOT NULL,
    service            text    NOT NULL,
    team               text    NOT NULL,
    cost_center        text    NOT NULL,
    product            text    NOT NULL,
    currency           text    NOT NULL,
    billed_cost        numeric NOT NULL,
    effective_cost     numeric NOT NULL,
    line_count         bigint  NOT NULL
);
CREATE INDEX cost_day_account ON cost_day (billing_account_id, period);
CREATE INDEX cost_day_day ON cost_day (day);
CREATE INDEX cost_day_team ON cost_day (team, day);

CREATE TABLE cost_month (
    billing_account_id text    NOT NULL,
    period             date    NOT NULL,
    provider           text    NOT NULL,
    service            text    NOT NULL,
    team               text    NOT NULL,
    cost_center        text    NOT NULL,
    product            text    NOT NULL,
    currency           text    NOT NULL,
    billed_cost        numeric NOT NULL,
    effective_cost     numeric NOT NULL,
    line_count         bigint  NOT NULL
);
CREATE INDEX cost_month_account ON cost_month (billing_account_id, period);
CREATE INDEX cost_month_period ON cost_month (period);
CREATE INDEX cost_month_team ON cost_month (team);

-- Allocation: owner totals per batch (CostAllocated); the counted ones are those of the current cost_version.
CREATE TABLE allocation (
    source_event_id    uuid    NOT NULL,
    ingest_id          uuid    NOT NULL,
    billing_account_id text    NOT NULL,
    period             date    NOT NULL,
    owner              text    NOT NULL,
    currency           text    NOT NULL,
    billed_cost        numeric NOT NULL,
    effective_cost     numeric NOT NULL,
    line_count         bigint  NOT NULL,
    PRIMARY KEY (source_event_id, owner, currency)
);
CREATE INDEX allocation_version ON allocation (billing_account_id, period, ingest_id);

CREATE TABLE journal (
    journal_id  uuid PRIMARY KEY,
    period      date        NOT NULL,
    entity      text        NOT NULL,
    closed_by   text        NOT NULL,
    line_count  integer     NOT NULL,
    debits      jsonb       NOT NULL,
    csv_url     text        NOT NULL,
    json_url    text        NOT NULL,
    exported_at timestamptz NOT NULL
);

CREATE TABLE budget_alert (
    scope_kind  text        NOT NULL,
    scope       text        NOT NULL,
    period      date        NOT NULL,
    threshold   numeric     NOT NULL,
    basis       text        NOT NULL,
    currency    text        NOT NULL,
    amount      numeric     NOT NULL,
    budget      numeric     NOT NULL,
    actual      numeric     NOT NULL,
    projected   numeric     NOT NULL,
    as_of       timestamptz NOT NULL,
    PRIMARY KEY (scope_kind, scope, period, threshold, basis)
);

CREATE TABLE coverage (
    period          date    NOT NULL,
    scope_kind      text    NOT NULL,
    scope           text    NOT NULL,
    ruleset_version integer NOT NULL,
    currency        text    NOT NULL,
    total           numeric NOT NULL,
    tagged_share    numeric NOT NULL,
    allocated_share numeric NOT NULL,
    measured_at     timestamptz NOT NULL,
    PRIMARY KEY (period, scope_kind, scope)
);

CREATE TABLE unit_cost (
    product   text    NOT NULL,
    period    date    NOT NULL,
    metric    text    NOT NULL,
    units     numeric NOT NULL,
    currency  text    NOT NULL,
    cost      numeric NOT NULL,
    unit_cost numeric NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (product, period, metric)
);

-- Ingest runs and their lifecycle.
CREATE TABLE ingest_run (
    ingest_id    uuid PRIMARY KEY,
    file_name    text,
    format       text,
    size_bytes   bigint,
    status       text NOT NULL,
    row_count    bigint,
    batch_count  integer,
    totals       jsonb,
    errors       jsonb,
    warnings     jsonb,
    accepted_at  timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX ingest_run_updated ON ingest_run (updated_at DESC);

-- Recommendations through their lifecycle, and the commitment KPIs.
CREATE TABLE recommendation (
    recommendation_id uuid PRIMARY KEY,
    kind        text        NOT NULL,
    target      text        NOT NULL,
    title       text        NOT NULL DEFAULT '',
    owner_team  text        NOT NULL,
    personas    text[]      NOT NULL DEFAULT '{}',
    currency    text,
    estimated_monthly_savings numeric,
    status      text        NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    billing_account_id text,
    provider    text,
    resource_id text,
    expires_at  timestamptz,
    issued_at   timestamptz,
    updated_at  timestamptz NOT NULL,
    superseded_by uuid,
    reason      text,
    content     jsonb
);
CREATE INDEX recommendation_page ON recommendation ((coalesce(estimated_monthly_savings, -1)) DESC, recommendation_id);
CREATE INDEX recommendation_team ON recommendation (owner_team);

CREATE TABLE kpi (
    pool               text    NOT NULL,
    provider           text    NOT NULL,
    billing_account_id text    NOT NULL,
    month              date    NOT NULL,
    currency           text    NOT NULL,
    on_demand_equivalent numeric NOT NULL,
    actual_cost        numeric NOT NULL,
    savings            numeric NOT NULL,
    effective_savings_rate numeric NOT NULL,
    coverage           numeric NOT NULL,
    utilization        numeric NOT NULL,
    unused_commitment_cost numeric NOT NULL,
    measured_at        timestamptz NOT NULL,
    PRIMARY KEY (pool, provider, billing_account_id, month)
);

-- Decisions: one row per decision (its state and the time it reached each stage), and its history.
CREATE TABLE decision (
    decision_id       uuid PRIMARY KEY,
    recommendation_id uuid,
    kind              text,
    owner_team        text,
    state             text        NOT NULL,
    title             text,
    proposer          text,
    currency          text,
    estimated_monthly_savings numeric,
    monthly_commitment numeric,
    term_months       integer,
    risk              text,
    provider          text,
    billing_account_id text,
    commitment_id     text,
    realized_savings  numeric,
    estimated_window_savings numeric,
    realization       numeric,
    proposed_at       timestamptz,
    approval_requested_at timestamptz,
    approved_at       timestamptz,
    rejected_at       timestamptz,
    expired_at        timestamptz,
    purchase_requested_at timestamptz,
    purchased_at      timestamptz,
    failed_at         timestamptz,
    verified_at       timestamptz,
    shortfall_at      timestamptz,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX decision_page ON decision (updated_at DESC, decision_id DESC);
CREATE INDEX decision_team ON decision (owner_team);
CREATE INDEX decision_recommendation ON decision (recommendation_id);

CREATE TABLE decision_event (
    event_id    uuid PRIMARY KEY,
    decision_id uuid        NOT NULL,
    type        text        NOT NULL,
    state       text,
    at          timestamptz NOT NULL,
    actor       text,
    summary     text        NOT NULL,
    payload     jsonb       NOT NULL
);
CREATE INDEX decision_event_decision ON decision_event (decision_id, at);

-- What the console has consumed, per topic and event type.
CREATE TABLE event_tally (
    topic    text        NOT NULL,
    type     text        NOT NULL,
    events   bigint      NOT NULL,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (topic, type)
);

-- Dashboard sign-in: a session id (only its SHA-256 stored) standing for an API token.
CREATE TABLE session (
    session_hash bytea PRIMARY KEY,
    token_hash   bytea       NOT NULL REFERENCES api_token (token_hash) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
