-- Restatements: each file that carries a billing account's period makes a new version of that period.
CREATE TABLE billing_period_version (
    billing_account_id   text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    version              integer     NOT NULL,
    ingest_id            uuid        NOT NULL REFERENCES ingest_file ON DELETE CASCADE,
    provider_name        text        NOT NULL,
    line_count           bigint      NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_account_id, billing_period_start, version),
    UNIQUE (billing_account_id, billing_period_start, ingest_id)
);

-- Every refused file and why, so no rejected input goes unexplained.
CREATE TABLE ingest_rejection (
    sha256      text        PRIMARY KEY,
    ingest_id   uuid        NOT NULL,
    file_name   text        NOT NULL,
    errors      jsonb       NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
