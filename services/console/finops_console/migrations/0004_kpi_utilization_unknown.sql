-- A KPI's utilization is unknown (NULL) where the bill cannot tell: an actual-cost bill carries commitments' fees
-- but no unused-commitment lines (finops_contracts.recommendations.KpiMeasured.utilization).
ALTER TABLE kpi ALTER COLUMN utilization DROP NOT NULL;
