-- Each billing period as its bill bounds it: BillingPeriodStart is the key everywhere (an exact instant, e.g.
-- 2026-03-01T08:00Z for a GCP period that starts at Pacific midnight), BillingPeriodEnd is the start of the
-- period after it. Rows come from the batches' own BillingPeriodEnd; periods from before this table have none,
-- and their successor is the next UTC month, as before.
CREATE TABLE billing_period (
    billing_period_start timestamptz PRIMARY KEY,
    billing_period_end   timestamptz NOT NULL CHECK (billing_period_end > billing_period_start)
);
