-- API tokens of the service, stored hashed (SHA-256 of the secret); the role and scope of each caller.
CREATE TABLE api_token (
    token_hash bytea       PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('engineering', 'finance', 'business', 'practitioner',
                                                    'automation', 'admin')),
    teams      text[]      NOT NULL DEFAULT '{}',
    products   text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
