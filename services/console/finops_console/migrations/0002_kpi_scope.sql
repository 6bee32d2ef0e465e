-- Where a pool's KPIs apply: empty for an account's flexible pool, region and instance family for a scoped one
-- (whose usage its account's flexible pool also holds, so totals sum the flexible pools only).
ALTER TABLE kpi ADD COLUMN scope jsonb NOT NULL DEFAULT '{}';
