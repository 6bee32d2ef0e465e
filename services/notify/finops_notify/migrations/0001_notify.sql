-- Subscribers, the notifications routed from events, the delivery queue with its attempts, dead letters,
-- circuit breakers and rate windows. Secrets are stored encrypted (Fernet), never in clear.

CREATE TABLE subscriber (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    persona         text        NOT NULL CHECK (persona IN ('engineering', 'finance', 'business', 'practitioner',
                                                            'automation', 'admin')),
    teams           text[]      NOT NULL DEFAULT '{}',
    cost_centers    text[]      NOT NULL DEFAULT '{}',
    event_types     text[]      NOT NULL DEFAULT '{}',
    min_severity    text        NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
    channel         text        NOT NULL CHECK (channel IN ('email', 'slack', 'teams', 'webhook')),
    target          text        NOT NULL,
    secret          bytea,
    quiet_start     time,
    quiet_end       time,
    timezone        text        NOT NULL DEFAULT 'UTC',
    rate_per_minute integer     CHECK (rate_per_minute > 0),
    digest          boolean     NOT NULL DEFAULT true,
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per routed event; stream_seq is assigned in commit order by a single sequencer, so a stream
-- reader that has seen N has seen every notification below N.
CREATE SEQUENCE notification_stream_seq;
CREATE TABLE notification (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    ce_type      text        NOT NULL,
    subject      text,
    severity     text        NOT NULL,
    personas     text[]      NOT NULL,
    teams        text[]      NOT NULL DEFAULT '{}',
    cost_centers text[]      NOT NULL DEFAULT '{}',
    approvers    text[]      NOT NULL DEFAULT '{}',
    title        text        NOT NULL,
    facts        jsonb       NOT NULL,
    payload      jsonb       NOT NULL,
    dedup_key    text        NOT NULL,
    immediate    boolean     NOT NULL,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    stream_seq   bigint      UNIQUE
);
CREATE INDEX notification_unsequenced ON notification (id) WHERE stream_seq IS NULL;
CREATE INDEX notification_created ON notification (created_at);

-- The delivery queue: the consumer writes rows in its transaction; workers claim due rows with SKIP LOCKED
-- and call the endpoint outside any transaction. A claimed row's next_attempt_at is its lease.
CREATE TABLE delivery (
    id              bigserial   PRIMARY KEY,
    notification_id bigint      REFERENCES notification (id),
    subscriber_id   uuid        NOT NULL REFERENCES subscriber (id),
    kind            text        NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'digest')),
    endpoint        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'suppressed')),
    reason          text,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    body            jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_subscriber ON delivery (subscriber_id, created_at);

CREATE TABLE delivery_attempt (
    delivery_id bigint      NOT NULL REFERENCES delivery (id),
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL CHECK (outcome IN ('delivered', 'failed', 'refused')),
    status_code integer,
    error       text,
    duration_ms integer     NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE dead_letter (
    delivery_id bigint      PRIMARY KEY REFERENCES delivery (id),
    subscriber_id uuid      NOT NULL,
    endpoint    text        NOT NULL,
    attempts    integer     NOT NULL,
    reason      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);

-- Duplicate suppression: the same news (dedup key) reaches a subscriber once per window.
CREATE TABLE sent_key (
    subscriber_id uuid        NOT NULL,
    dedup_key     text        NOT NULL,
    first_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber_id, dedup_key)
);

CREATE TABLE circuit (
    endpoint      text        PRIMARY KEY,
    failures      integer     NOT NULL DEFAULT 0,
    open_until    timestamptz
);

CREATE TABLE rate_window (
    subscriber_id uuid        NOT NULL,
    window_start  timestamptz NOT NULL,
    sent          integer     NOT NULL,
    PRIMARY KEY (subscriber_id, window_start)
);

CREATE TABLE digest_run (
    subscriber_id uuid        NOT NULL,
    week_start    date        NOT NULL,
    delivery_id   bigint,
    PRIMARY KEY (subscriber_id, week_start)
);
