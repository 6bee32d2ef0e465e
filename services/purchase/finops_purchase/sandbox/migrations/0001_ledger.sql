-- The sandbox provider's own ledger: what it "sold", one row per client token. It lives in its own schema so
-- it survives anything that happens to the purchase service, as a cloud provider's records would.

CREATE TABLE commitment (
    client_token        text PRIMARY KEY,
    commitment_id       text        NOT NULL UNIQUE,
    fingerprint         text        NOT NULL,
    billing_account_id  text,
    program             text        NOT NULL,
    term_months         integer     NOT NULL,
    payment             text        NOT NULL,
    start_at            timestamptz NOT NULL,
    end_at              timestamptz NOT NULL,
    commitment_per_hour numeric     NOT NULL CHECK (commitment_per_hour > 0),
    currency            text        NOT NULL,
    upfront             numeric     NOT NULL CHECK (upfront >= 0),
    purchased_at        timestamptz NOT NULL DEFAULT now()
);

-- Every purchase call the sandbox answered (or failed on purpose), for tests and operators to count.
CREATE TABLE call (
    id           bigserial PRIMARY KEY,
    client_token text        NOT NULL,
    outcome      text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_token ON call (client_token);
