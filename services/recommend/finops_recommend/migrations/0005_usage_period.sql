-- One file carries many billing accounts and periods, and each (account, period) has its own current version.
-- The usage model keeps each row's billing account and period so that a row counts once, under the current
-- version of its own account and period, and a restatement drops only the period it restates.
-- Rows written before this migration take the period of their batch when their ingest and account carried one
-- period only (usage_batch), else the UTC month of their bucket or day.
ALTER TABLE pool_usage ADD COLUMN billing_period_start timestamptz;
ALTER TABLE family_usage ADD COLUMN billing_period_start timestamptz;
ALTER TABLE commitment_usage ADD COLUMN billing_period_start timestamptz;
ALTER TABLE resource_day ADD COLUMN billing_period_start timestamptz;

CREATE TEMPORARY TABLE single_period ON COMMIT DROP AS
    SELECT ingest_id, billing_account_id, min(billing_period_start) AS billing_period_start
    FROM usage_batch GROUP BY 1, 2 HAVING count(DISTINCT billing_period_start) = 1;

UPDATE pool_usage u SET billing_period_start = coalesce(
    (SELECT s.billing_period_start FROM single_period s
     WHERE s.ingest_id = u.ingest_id AND s.billing_account_id = u.billing_account_id),
    date_trunc('month', u.bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
UPDATE family_usage u SET billing_period_start = coalesce(
    (SELECT s.billing_period_start FROM single_period s
     WHERE s.ingest_id = u.ingest_id AND s.billing_account_id = u.billing_account_id),
    date_trunc('month', u.bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
UPDATE commitment_usage u SET billing_period_start = coalesce(
    (SELECT s.billing_period_start FROM single_period s
     WHERE s.ingest_id = u.ingest_id AND s.billing_account_id = u.billing_account_id),
    date_trunc('month', u.bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
UPDATE resource_day u SET billing_period_start = coalesce(
    (SELECT s.billing_period_start FROM single_period s
     WHERE s.ingest_id = u.ingest_id AND s.billing_account_id = u.billing_account_id),
    date_trunc('month', u.day::timestamp) AT TIME ZONE 'UTC');

ALTER TABLE pool_usage ALTER COLUMN billing_period_start SET NOT NULL;
ALTER TABLE family_usage ALTER COLUMN billing_period_start SET NOT NULL;
ALTER TABLE commitment_usage ALTER COLUMN billing_period_start SET NOT NULL;
ALTER TABLE resource_day ALTER COLUMN billing_period_start SET NOT NULL;

ALTER TABLE pool_usage DROP CONSTRAINT pool_usage_pkey;
ALTER TABLE pool_usage ADD PRIMARY KEY (ingest_id, billing_period_start, billing_account_id, provider_name, pool,
                                        bucket, grain_hours, currency, team);
ALTER TABLE family_usage DROP CONSTRAINT family_usage_pkey;
ALTER TABLE family_usage ADD PRIMARY KEY (ingest_id, billing_period_start, billing_account_id, provider_name,
                                          region_id, family, bucket, grain_hours, currency, team);
ALTER TABLE commitment_usage DROP CONSTRAINT commitment_usage_pkey;
ALTER TABLE commitment_usage ADD PRIMARY KEY (ingest_id, billing_period_start, billing_account_id, provider_name,
                                              commitment_id, category, region_id, family, bucket, grain_hours,
                                              currency);
ALTER TABLE resource_day DROP CONSTRAINT resource_day_pkey;
ALTER TABLE resource_day ADD PRIMARY KEY (ingest_id, billing_period_start, billing_account_id, sub_account_id,
                                          provider_name, region_id, service_name, service_category, resource_id,
                                          team, snapshot, day, currency, instance_type);
