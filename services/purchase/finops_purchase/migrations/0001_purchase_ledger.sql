-- The purchase ledger: one row per decision, written (and committed) before any provider call, so a crash at any
-- point leaves a row that says what may be in flight. The decision id is the provider's client token.

CREATE TABLE purchase (
    decision_id            uuid PRIMARY KEY,
    client_token           text        NOT NULL UNIQUE,
    recommendation_id      uuid        NOT NULL,
    owner_team             text        NOT NULL,
    provider_name          text        NOT NULL,
    billing_account_id     text,
    adapter                text        NOT NULL,
    dry_run                boolean     NOT NULL,
    program                text        NOT NULL,
    term_months            integer     NOT NULL,
    payment                text        NOT NULL,
    start_at               timestamptz NOT NULL,
    commitment_per_hour    numeric     NOT NULL,
    currency               text        NOT NULL,
    covered_usage_per_hour numeric     NOT NULL,
    fingerprint            text        NOT NULL,
    state                  text        NOT NULL DEFAULT 'in_flight'
                                       CHECK (state IN ('in_flight', 'purchased', 'failed')),
    attempts               integer     NOT NULL DEFAULT 0,
    next_attempt_at        timestamptz NOT NULL DEFAULT now(),
    last_error             text,
    deliveries             integer     NOT NULL DEFAULT 1,
    commitment_id          text,
    commitment_start       timestamptz,
    commitment_end         timestamptz,
    commitment_amount      numeric,
    upfront                numeric,
    reconciled             boolean     NOT NULL DEFAULT false,
    failure_reason         text,
    requested_at           timestamptz NOT NULL DEFAULT now(),
    settled_at             timestamptz,
    CHECK ((state = 'purchased') = (commitment_id IS NOT NULL)),
    CHECK ((state = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX purchase_due ON purchase (next_attempt_at) WHERE state = 'in_flight';
CREATE INDEX purchase_recent ON purchase (requested_at DESC);

-- Every call made to a provider for a decision, written before the call and completed after it.
CREATE TABLE provider_call (
    id          bigserial PRIMARY KEY,
    decision_id uuid        NOT NULL REFERENCES purchase (decision_id),
    call        text        NOT NULL CHECK (call IN ('purchase', 'find')),
    attempt     integer     NOT NULL,
    instance    text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text,
    detail      text
);
CREATE INDEX provider_call_decision ON provider_call (decision_id, id);
