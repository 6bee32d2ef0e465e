-- Periods waiting for an allocation run: a period completion marks its period, and one run follows however
-- many billing accounts completed it meanwhile.
CREATE TABLE period_dirty (
    billing_period_start timestamptz PRIMARY KEY,
    marked_at            timestamptz NOT NULL DEFAULT now()
);
