-- The instance type a resource's compute lines name (m5.xlarge, Standard_D4s_v5, n2-standard-8; '' when none):
-- rightsizing proposes the size its utilization calls for and prices it. Part of the key, since a resize
-- changes it within a day. Rows from before it have '' and are rightsized as before (one size down, half).
ALTER TABLE resource_day ADD COLUMN instance_type text NOT NULL DEFAULT '';
ALTER TABLE resource_day DROP CONSTRAINT resource_day_pkey;
ALTER TABLE resource_day ADD PRIMARY KEY (ingest_id, billing_account_id, sub_account_id, provider_name, region_id,
                                          service_name, service_category, resource_id, team, snapshot, day,
                                          currency, instance_type);
