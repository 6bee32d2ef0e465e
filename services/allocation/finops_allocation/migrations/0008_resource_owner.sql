-- The resources of each ingest of a billing period, with the facet (dims and tags) of their lines and the
-- EffectiveCost under each: an allocation run decides each resource's owner from its largest facet.
CREATE TABLE resource_facet (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    resource_id          text        NOT NULL,
    facet_hash           bytea       NOT NULL,
    dims                 jsonb       NOT NULL,
    tags                 jsonb       NOT NULL,
    effective_cost       numeric     NOT NULL,
    PRIMARY KEY (billing_account_id, billing_period_start, ingest_id, resource_id, facet_hash)
);

-- Each allocation run that published owners gets the next number: consumers keep the newest per resource.
CREATE SEQUENCE ownership_run;

-- The bill's own totals of each version of a billing account's period (CostPeriodCompleted), which the ledger's
-- allocation of that period must conserve to the cent.
CREATE TABLE period_bill (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    version              integer     NOT NULL,
    billing_currency     text        NOT NULL,
    billed_cost          numeric     NOT NULL,
    effective_cost       numeric     NOT NULL,
    line_count           bigint      NOT NULL,
    PRIMARY KEY (billing_account_id, billing_period_start, ingest_id, billing_currency)
);

-- Allocation runs the conservation check stopped: nothing of such a run was written or published.
CREATE TABLE conservation_violation (
    id                   bigserial   PRIMARY KEY,
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    version              integer     NOT NULL,
    detail               text        NOT NULL,
    found_at             timestamptz NOT NULL DEFAULT now()
);
