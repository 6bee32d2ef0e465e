-- Decisions on recommendations, their approvals and transitions, delegations, the versioned approval policy,
-- cost lines matched to purchased commitments, and the append-only, hash-chained audit log.

-- Every version of the approval policy is kept; the newest is in force. A decision records the version and
-- the rule that applied to it.
CREATE TABLE policy_version (
    version    integer     PRIMARY KEY,
    document   jsonb       NOT NULL,
    source     text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE decision (
    id                        uuid        PRIMARY KEY,
    seq                       bigserial   UNIQUE,
    recommendation_id         uuid        NOT NULL,
    tranche                   integer,
    kind                      text        NOT NULL CHECK (kind IN ('commitment_plan', 'rightsizing', 'idle')),
    owner_team                text        NOT NULL,
    title                     text        NOT NULL,
    proposer                  text        NOT NULL,
    state                     text        NOT NULL CHECK (state IN ('proposed', 'pending_approval', 'approved',
                                                  'rejected', 'expired', 'purchase_requested', 'purchased',
                                                  'failed', 'savings_verified', 'savings_shortfall')),
    currency                  char(3)     NOT NULL,
    estimated_monthly_savings numeric     NOT NULL,
    monthly_commitment        numeric,
    shown_commitment          numeric,     -- the monthly commitment approvers were last asked about
    term_months               integer,
    risk                      text        NOT NULL,
    coverage                  numeric,     -- the tranche's covered usage / the pool's usage, when known
    billing_account_id        text,
    provider_name             text,
    purchase                  jsonb,       -- the CommitmentPurchase tranche this decision buys
    recommendation_version    integer     NOT NULL DEFAULT 1,
    recommendation_expires_at timestamptz,
    policy_version            integer     NOT NULL REFERENCES policy_version (version),
    policy_rule               text        NOT NULL,
    rule                      jsonb       NOT NULL,  -- the rule as it applied (validity, expiry, reminders)
    savings_tolerance         numeric     NOT NULL,
    requirements              jsonb       NOT NULL,
    round                     integer     NOT NULL DEFAULT 0,  -- approvals of earlier rounds count for nothing
    reminders                 integer     NOT NULL DEFAULT 0,
    next_reminder_at          timestamptz,
    due_at                    timestamptz,
    proposed_at               timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    approved_at               timestamptz,
    automatic                 boolean     NOT NULL DEFAULT false,
    commitment_id             text,
    commitment_start          timestamptz,
    outcome                   jsonb        -- purchase failure or savings verification
);
CREATE INDEX decision_recommendation ON decision (recommendation_id);
CREATE INDEX decision_state ON decision (state, seq);
CREATE INDEX decision_due ON decision (due_at) WHERE state IN ('proposed', 'pending_approval');
CREATE INDEX decision_reminder ON decision (next_reminder_at) WHERE state = 'pending_approval';
CREATE UNIQUE INDEX decision_commitment ON decision (commitment_id) WHERE commitment_id IS NOT NULL;

CREATE TABLE approval (
    id           bigserial   PRIMARY KEY,
    decision_id  uuid        NOT NULL REFERENCES decision (id),
    round        integer     NOT NULL,
    principal    text        NOT NULL,
    persona      text,       -- null for automation
    on_behalf_of text,
    comment      text        NOT NULL DEFAULT '',
    rule         text,       -- the autopilot rule, for an automatic approval
    at           timestamptz NOT NULL
);
CREATE INDEX approval_decision ON approval (decision_id, round);

CREATE TABLE transition (
    id          bigserial   PRIMARY KEY,
    decision_id uuid        NOT NULL REFERENCES decision (id),
    from_state  text,
    to_state    text        NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL
);
CREATE INDEX transition_decision ON transition (decision_id, id);

CREATE TABLE delegation (
    id          uuid        PRIMARY KEY,
    delegator   text        NOT NULL,
    persona     text        NOT NULL CHECK (persona IN ('engineering', 'finance', 'business', 'practitioner')),
    teams       text[]      NOT NULL DEFAULT '{}',
    delegate    text        NOT NULL,
    valid_until timestamptz NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX delegation_delegate ON delegation (delegate, valid_until);

-- Cost lines that used a purchased commitment, summed per cost batch: a batch counts once whatever its
-- ce_id, and a newer file for the same billing account and period replaces the older one's rows.
CREATE TABLE savings_match (
    decision_id          uuid        NOT NULL REFERENCES decision (id),
    ingest_id            uuid        NOT NULL,
    batch_seq            integer     NOT NULL,
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    lines                integer     NOT NULL,
    covered_savings      numeric     NOT NULL,  -- sum of list_cost - effective_cost over covered usage
    unused_cost          numeric     NOT NULL,  -- sum of effective_cost of the commitment's unused lines
    window_start         timestamptz NOT NULL,
    window_end           timestamptz NOT NULL,
    PRIMARY KEY (decision_id, ingest_id, batch_seq)
);

-- The audit log: every request and every state change, append-only. Each row's hash is
-- sha256(previous row's hash || canonical JSON of this row), so `python -m finops_decision.audit verify`
-- finds a row that was changed or deleted, even by someone who could switch the trigger off.
CREATE TABLE audit_log (
    seq         bigint      PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    decision_id uuid,
    method      text,
    path        text,
    status      integer,
    detail      text        NOT NULL,  -- canonical JSON
    hash        bytea       NOT NULL
);
CREATE INDEX audit_log_decision ON audit_log (decision_id, seq) WHERE decision_id IS NOT NULL;

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
