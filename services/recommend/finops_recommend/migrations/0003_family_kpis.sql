-- KPIs per scoped pool (instance family and region): what commitments cost there, their unused part, and what
-- the rest cost on demand, beside the usage already summed. Rows written before this migration cannot know
-- them and keep NULL: no KPI is published for a month that has such rows until its period is ingested again.
ALTER TABLE family_usage
    ADD COLUMN commitment_cost        numeric,
    ADD COLUMN unused_commitment_cost numeric,
    ADD COLUMN on_demand_cost         numeric;
