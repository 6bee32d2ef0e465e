-- Who owns each resource, as allocation published it (ResourceOwned): the newest (billing period, run) per
-- resource. A resource without a row is "unallocated"; this service never derives an owner itself.
CREATE TABLE resource_owner (
    billing_account_id   text        NOT NULL,
    resource_id          text        NOT NULL,
    owner_team           text        NOT NULL,
    cost_center          text,
    decided_by           text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    run                  bigint      NOT NULL,
    ruleset_version      integer     NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_account_id, resource_id)
);

-- Cost's team and cost center are no longer read from tags: the facts keep each line's resource, and the
-- cost_day / cost_month views give every resource the owner allocation published (its cost center when an
-- allocation rule gave one), else "unallocated", when they are read. Facts counted before this migration have
-- no resource (''), so they read as unallocated until their period is ingested again.
DROP INDEX cost_day_team;
ALTER TABLE cost_stage DROP COLUMN team, DROP COLUMN cost_center, ADD COLUMN resource_id text NOT NULL DEFAULT '';
ALTER TABLE cost_day RENAME TO cost_day_fact;
ALTER TABLE cost_day_fact DROP COLUMN team, DROP COLUMN cost_center, ADD COLUMN resource_id text NOT NULL DEFAULT '';
ALTER TABLE cost_month RENAME TO cost_month_fact;
ALTER TABLE cost_month_fact DROP COLUMN team, DROP COLUMN cost_center,
    ADD COLUMN resource_id text NOT NULL DEFAULT '';

CREATE VIEW cost_day AS
SELECT f.billing_account_id, f.period, f.day, f.provider, f.service,
       COALESCE(o.owner_team, 'unallocated') AS team, COALESCE(o.cost_center, 'unallocated') AS cost_center,
       f.product, f.currency, f.billed_cost, f.effective_cost, f.line_count, f.resource_id
FROM cost_day_fact f
LEFT JOIN resource_owner o ON o.billing_account_id = f.billing_account_id AND o.resource_id = f.resource_id;

CREATE VIEW cost_month AS
SELECT f.billing_account_id, f.period, f.provider, f.service,
       COALESCE(o.owner_team, 'unallocated') AS team, COALESCE(o.cost_center, 'unallocated') AS cost_center,
       f.product, f.currency, f.billed_cost, f.effective_cost, f.line_count, f.resource_id
FROM cost_month_fact f
LEFT JOIN resource_owner o ON o.billing_account_id = f.billing_account_id AND o.resource_id = f.resource_id;
