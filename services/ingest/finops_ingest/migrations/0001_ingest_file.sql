-- One row per accepted billing file; the same file (same checksum) is accepted once.
CREATE TABLE ingest_file (
    ingest_id    uuid        PRIMARY KEY,
    file_name    text        NOT NULL,
    sha256       text        NOT NULL UNIQUE,
    size_bytes   bigint      NOT NULL,
    row_count    bigint      NOT NULL,
    batch_count  integer     NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- The file's own totals per billing account and currency, as read, for reconciliation downstream.
CREATE TABLE ingest_total (
    ingest_id          uuid    NOT NULL REFERENCES ingest_file ON DELETE CASCADE,
    billing_account_id text    NOT NULL,
    billing_currency   char(3) NOT NULL,
    billed_cost        numeric NOT NULL,
    effective_cost     numeric NOT NULL,
    line_count         bigint  NOT NULL,
    PRIMARY KEY (ingest_id, billing_account_id, billing_currency)
);
