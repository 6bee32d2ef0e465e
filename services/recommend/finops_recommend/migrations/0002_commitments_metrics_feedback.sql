-- Narrower pools, the commitments already held, a utilization metrics feed, and the decision service's answers.

-- Usage per instance family and region (what EC2 Instance Savings Plans and RIs, Azure reservations and GCP
-- resource-based CUDs can cover), per ingest like pool_usage.
CREATE TABLE family_usage (
    ingest_id            uuid        NOT NULL,
    billing_account_id   text        NOT NULL,
    provider_name        text        NOT NULL,
    region_id            text        NOT NULL,
    family               text        NOT NULL,
    bucket               timestamptz NOT NULL,
    grain_hours          integer     NOT NULL,
    currency             text        NOT NULL,
    team                 text        NOT NULL,
    on_demand_equivalent numeric     NOT NULL,
    covered              numeric     NOT NULL,
    PRIMARY KEY (ingest_id, billing_account_id, provider_name, region_id, family, bucket, grain_hours, currency, team)
);

-- What each commitment named in the cost lines (CommitmentDiscountId) did per bucket: the usage it covered at
-- on-demand rates, what that usage cost, its unused cost, and the purchase fees billed for it.
CREATE TABLE commitment_usage (
    ingest_id          uuid        NOT NULL,
    billing_account_id text        NOT NULL,
    provider_name      text        NOT NULL,
    commitment_id      text        NOT NULL,
    category           text        NOT NULL,
    region_id          text        NOT NULL,
    family             text        NOT NULL,
    bucket             timestamptz NOT NULL,
    grain_hours        integer     NOT NULL,
    currency           text        NOT NULL,
    covered            numeric     NOT NULL,
    used_cost          numeric     NOT NULL,
    unused_cost        numeric     NOT NULL,
    purchase_cost      numeric     NOT NULL,
    PRIMARY KEY (ingest_id, billing_account_id, provider_name, commitment_id, category, region_id, family, bucket,
                 grain_hours, currency)
);
CREATE INDEX commitment_usage_id ON commitment_usage (commitment_id, bucket);

-- Commitments known with their terms: rows of a FOCUS Contract Commitment dataset, and purchases the purchase
-- service reported. A purchase and a dataset row of the same id are one commitment; the purchase wins.
CREATE TABLE commitment (
    commitment_id          text        PRIMARY KEY,
    source                 text        NOT NULL CHECK (source IN ('contract_dataset', 'purchase')),
    program                text,
    billing_account_id     text,
    provider_name          text,
    scope                  jsonb       NOT NULL DEFAULT '{}',
    term_months            integer,
    payment                text,
    starts_at              timestamptz NOT NULL,
    ends_at                timestamptz,
    commitment_per_hour    numeric,
    covered_usage_per_hour numeric,
    currency               text,
    category               text,
    description            text,
    decision_id            uuid,
    dry_run                boolean     NOT NULL DEFAULT false,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Purchases the decision service asked for (finops.decision.v1 purchase_requested): what the commitment covers,
-- kept until the purchase service reports it bought (finops.purchase.v1), keyed by the decision id.
CREATE TABLE purchase_request (
    decision_id            uuid        PRIMARY KEY,
    recommendation_id      uuid        NOT NULL,
    billing_account_id     text,
    provider_name          text        NOT NULL,
    program                text        NOT NULL,
    term_months            integer     NOT NULL,
    payment                text        NOT NULL,
    scope                  jsonb       NOT NULL DEFAULT '{}',
    commitment_per_hour    numeric     NOT NULL,
    covered_usage_per_hour numeric     NOT NULL,
    currency               text        NOT NULL
);

-- Advice a person rejected: the same kind and target are not advised again before `until`.
CREATE TABLE rejection (
    recommendation_id uuid        PRIMARY KEY,
    decision_id       uuid        NOT NULL,
    kind              text        NOT NULL,
    target            text        NOT NULL,
    principal         text        NOT NULL,
    comment           text        NOT NULL,
    rejected_at       timestamptz NOT NULL,
    until             timestamptz NOT NULL
);
CREATE INDEX rejection_target ON rejection (kind, target, until);

-- The utilization metrics feed: one row per resource and timestamp, fractions in [0, 1].
CREATE TABLE utilization (
    resource_id text        NOT NULL,
    ts          timestamptz NOT NULL,
    cpu         numeric     CHECK (cpu IS NULL OR (cpu >= 0 AND cpu <= 1)),
    memory      numeric     CHECK (memory IS NULL OR (memory >= 0 AND memory <= 1)),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_id, ts)
);
