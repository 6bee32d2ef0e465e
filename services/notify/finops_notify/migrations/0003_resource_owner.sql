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
