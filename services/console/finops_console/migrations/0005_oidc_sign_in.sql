-- Single sign-on (OpenID Connect code flow). A pending sign-in is bound to the browser that started it: the
-- browser holds a random login id in a short-lived cookie, the database only its SHA-256 with the state,
-- nonce and PKCE verifier the callback must match; it is deleted when used. A signed-in session stands for
-- the identity the provider's ID token proved, mapped to a role and scopes at sign-in (no API token behind it).
CREATE TABLE oidc_login (
    login_hash    bytea PRIMARY KEY,
    state         text        NOT NULL,
    nonce         text        NOT NULL,
    code_verifier text        NOT NULL,
    redirect_uri  text        NOT NULL,
    expires_at    timestamptz NOT NULL
);

CREATE TABLE oidc_session (
    session_hash bytea PRIMARY KEY,
    principal_id text        NOT NULL,
    name         text        NOT NULL,
    role         text        NOT NULL,
    teams        text[]      NOT NULL DEFAULT '{}',
    products     text[]      NOT NULL DEFAULT '{}',
    accounts     text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX oidc_session_expiry ON oidc_session (expires_at);
