-- Dated exchange rates for reporting in one currency: the rate of the latest date on or before a period's start.
CREATE TABLE fx_rate (
    rate_date     date    NOT NULL,
    from_currency char(3) NOT NULL,
    to_currency   char(3) NOT NULL,
    rate          numeric NOT NULL CHECK (rate > 0),
    PRIMARY KEY (from_currency, to_currency, rate_date)
);

-- Business metrics (transactions, active customers...) per product and period, for unit economics.
CREATE TABLE business_metric (
    product              text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    metric               text        NOT NULL,
    units                numeric     NOT NULL CHECK (units > 0),
    reported_by          text        NOT NULL,
    PRIMARY KEY (product, billing_period_start, metric)
);

-- Tag and allocation coverage per billing account and per team, refreshed by every allocation run.
CREATE TABLE coverage_kpi (
    billing_period_start timestamptz NOT NULL,
    scope_kind           text        NOT NULL CHECK (scope_kind IN ('account', 'team')),
    scope                text        NOT NULL,
    currency             char(3)     NOT NULL,
    total_cost           numeric     NOT NULL,
    tagged_cost          numeric     NOT NULL,
    allocated_cost       numeric     NOT NULL,
    PRIMARY KEY (billing_period_start, scope_kind, scope, currency)
);
