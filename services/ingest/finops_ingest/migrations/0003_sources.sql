-- Each object version read from a bucket, so it is ingested once across restarts and instances. An instance
-- claims a version with a transaction-scoped advisory lock and inserts its row, with the outcome, in that same
-- transaction: no row is ever half-done, and a version whose instance died is claimed again at the next poll.
CREATE TABLE source_object (
    bucket        text        NOT NULL,
    key           text        NOT NULL,
    etag          text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    last_modified timestamptz,
    sha256        text,
    ingest_id     uuid,
    outcome       text        NOT NULL CHECK (outcome IN ('ingested', 'duplicate', 'rejected')),
    rejection     jsonb,
    instance      text        NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, key, etag),
    CHECK ((outcome = 'rejected') = (rejection IS NOT NULL))
);
