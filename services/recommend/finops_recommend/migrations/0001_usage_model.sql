-- The usage model: exact sums of cost lines per commitment pool and hour (or day), and per resource and day,
-- kept per ingest (one version of a billing period's file); only the current version of each period counts.

CREATE TABLE period_version (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    version              integer     NOT NULL,
    provider_name        text        NOT NULL,
    completed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_account_id, billing_period_start)
);

-- Batches already in the model: a batch redelivered under another ce_id adds nothing.
CREATE TABLE usage_batch (
    ingest_id            uuid        NOT NULL,
    batch_seq            integer     NOT NULL,
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    PRIMARY KEY (ingest_id, batch_seq)
);

CREATE TABLE pool_usage (
    ingest_id              uuid        NOT NULL,
    billing_account_id     text        NOT NULL,
    provider_name          text        NOT NULL,
    pool                   text        NOT NULL,
    bucket                 timestamptz NOT NULL,
    grain_hours            integer     NOT NULL,
    currency               text        NOT NULL,
    team                   text        NOT NULL,
    on_demand_equivalent   numeric     NOT NULL,
    covered                numeric     NOT NULL,
    commitment_cost        numeric     NOT NULL,
    unused_commitment_cost numeric     NOT NULL,
    on_demand_cost         numeric     NOT NULL,
    PRIMARY KEY (ingest_id, pool, bucket, grain_hours, currency, team)
);
CREATE INDEX pool_usage_pool ON pool_usage (pool, currency, bucket);

CREATE TABLE resource_day (
    ingest_id          uuid    NOT NULL,
    billing_account_id text    NOT NULL,
    sub_account_id     text    NOT NULL,
    provider_name      text    NOT NULL,
    region_id          text    NOT NULL,
    service_name       text    NOT NULL,
    service_category   text    NOT NULL,
    resource_id        text    NOT NULL,
    team               text    NOT NULL,
    snapshot           boolean NOT NULL,
    day                date    NOT NULL,
    currency           text    NOT NULL,
    effective_cost     numeric NOT NULL,
    billed_cost        numeric NOT NULL,
    PRIMARY KEY (ingest_id, billing_account_id, sub_account_id, provider_name, region_id, service_name,
                 service_category, resource_id, team, snapshot, day, currency)
);

-- A completed period marks the model for an analysis run; one run follows however many periods completed.
CREATE TABLE analysis_mark (
    scope     text        PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT now()
);

-- Every recommendation and where it is in its lifecycle; at most one open per kind and target.
CREATE TABLE recommendation (
    id            uuid        PRIMARY KEY,
    kind          text        NOT NULL,
    target        text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('issued', 'updated', 'superseded', 'expired')),
    version       integer     NOT NULL,
    fingerprint   text        NOT NULL,
    owner_team    text        NOT NULL,
    personas      text[]      NOT NULL,
    savings       numeric     NOT NULL,
    currency      text        NOT NULL,
    expires_at    timestamptz NOT NULL,
    content       jsonb       NOT NULL,
    superseded_by uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX recommendation_open ON recommendation (kind, target) WHERE status IN ('issued', 'updated');

-- The KPIs last published per pool, month and currency: a rerun on the same data publishes nothing.
CREATE TABLE kpi (
    pool        text        NOT NULL,
    month       timestamptz NOT NULL,
    currency    text        NOT NULL,
    fingerprint text        NOT NULL,
    content     jsonb       NOT NULL,
    PRIMARY KEY (pool, month, currency)
);
