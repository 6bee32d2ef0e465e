-- Cost allocated to owners per billing account, billing period, currency and source file (ingest).
-- The ingest id is part of the key so that a restated period can replace an older file's lines.
CREATE TABLE cost_allocation (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    billing_currency     char(3)     NOT NULL,
    owner                text        NOT NULL,
    ingest_id            uuid        NOT NULL,
    billed_cost          numeric     NOT NULL,
    effective_cost       numeric     NOT NULL,
    line_count           bigint      NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_account_id, billing_period_start, billing_currency, owner, ingest_id)
);

CREATE VIEW cost_by_owner AS
SELECT billing_account_id, billing_period_start, billing_currency, owner,
       sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost, sum(line_count) AS line_count
FROM cost_allocation
GROUP BY billing_account_id, billing_period_start, billing_currency, owner;
