-- The version of each billing account's period that counts: the newest one whose lines were all allocated.
-- A newer version replaces the older one; it never adds to it.
CREATE TABLE current_period (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    ingest_id            uuid        NOT NULL,
    version              integer     NOT NULL,
    provider_name        text        NOT NULL,
    line_count           bigint      NOT NULL,
    completed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_account_id, billing_period_start)
);

-- Allocations of the current versions only.
CREATE VIEW current_allocation AS
SELECT a.*
FROM cost_allocation a
JOIN current_period p USING (billing_account_id, billing_period_start, ingest_id);

CREATE OR REPLACE VIEW cost_by_owner AS
SELECT billing_account_id, billing_period_start, billing_currency, owner,
       sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost, sum(line_count) AS line_count
FROM current_allocation
GROUP BY billing_account_id, billing_period_start, billing_currency, owner;
