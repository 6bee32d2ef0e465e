-- The recurring fees of each pool's commitments, as billed (usage.POOL_AMOUNTS). An actual-cost bill does not
-- amortize them over the usage they cover, so they are the only measure there of what the commitments cost.
-- Rows summed before this migration carry 0: their KPIs are as they were until the period is ingested again.
ALTER TABLE pool_usage ADD COLUMN commitment_fee numeric NOT NULL DEFAULT 0;
