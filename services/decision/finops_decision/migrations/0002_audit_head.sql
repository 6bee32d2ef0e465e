-- The head of the audit chain: the newest row's sequence number and hash, written in the same transaction as
-- every append. The chain alone cannot tell that its newest rows were deleted (what is left still chains);
-- verification compares the log's end with this row. It holds no data of its own, only where the log ends.
CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO audit_head (seq, hash)
SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1;
