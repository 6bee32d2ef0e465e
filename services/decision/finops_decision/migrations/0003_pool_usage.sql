-- The decision service's own view of each commitment pool's usage, kept from the cost batches it consumes and
-- computed independently of the recommend service: the guard compares a purchase request's hourly commitment
-- with it before money moves (see finops_decision.guard).
--
-- Each cost line counts once, under the current version of its own billing account and billing period: rows
-- keep the ingest (file) they came from and the line's billing account and period, and only the ingest that is
-- the current version of that account and period (period_version, from CostPeriodCompleted) counts. A
-- restatement of one account-period replaces that account-period only; the same file's other accounts and
-- periods keep theirs.

-- Batches already in the model: a redelivery under another ce_id adds nothing.
CREATE TABLE usage_batch (
    ingest_id uuid    NOT NULL,
    batch_seq integer NOT NULL,
    PRIMARY KEY (ingest_id, batch_seq)
);

-- The version of each billing account and period that counts: the highest version completed.
CREATE TABLE period_version (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    version              integer     NOT NULL,
    completed_at         timestamptz NOT NULL,
    PRIMARY KEY (billing_account_id, billing_period_start)
);

-- On-demand-equivalent usage per pool and hour (daily lines spread evenly over their 24 hours).
CREATE TABLE pool_usage (
    ingest_id            uuid        NOT NULL,
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    pool                 text        NOT NULL,  -- the flexible commitment program whose usage it is
    hour                 timestamptz NOT NULL,
    currency             char(3)     NOT NULL,
    on_demand_equivalent numeric     NOT NULL,
    PRIMARY KEY (ingest_id, billing_account_id, billing_period_start, pool, hour, currency)
);
CREATE INDEX pool_usage_pool ON pool_usage (billing_account_id, pool, hour);

-- What the guard found when the decision was last about to request its purchase: both figures, the share and
-- the lookback (the API shows it); and the plan's own lookback, when the recommendation carried one.
ALTER TABLE decision ADD COLUMN guard jsonb;
ALTER TABLE decision ADD COLUMN lookback_hours integer;
