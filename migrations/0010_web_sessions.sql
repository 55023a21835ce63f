-- People sign in to the inbox. Neither table holds a secret: only SHA-256 digests of the
-- tokens handed out, so a copy of the database signs nobody in. Bookkeeping, not conversation:
-- nothing here is an event.

-- One-time sign-in links (`switchboard login-link`). Single use is enforced by the statement
-- that consumes a link: it sets used_at only where used_at IS NULL and the link has not expired,
-- so of two concurrent uses exactly one gets the row.
CREATE TABLE login_links (
    token_sha256 bytea       PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    CONSTRAINT login_links_digest_length CHECK (octet_length(token_sha256) = 32)
);

-- A signed-in browser: the record behind the session cookie. The cookie carries the id and a
-- secret; the row keeps the secret's digest. Revoking (sign-out, sign out everywhere, or
-- revoking the API key the session was made from) notifies `switchboard_keys` with
-- 'web_session:<id>', so every node stops accepting it at once.
CREATE TABLE web_sessions (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    token_sha256 bytea       NOT NULL,
    -- The API key pasted to sign in, when it was one (its revocation ends the session).
    api_key_id   uuid        REFERENCES api_keys (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Maintained in batches, not per request.
    last_seen_at timestamptz,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CONSTRAINT web_sessions_digest_length CHECK (octet_length(token_sha256) = 32)
);

CREATE INDEX web_sessions_by_tenant ON web_sessions (tenant_id) WHERE revoked_at IS NULL;
CREATE INDEX web_sessions_by_key ON web_sessions (api_key_id) WHERE api_key_id IS NOT NULL;
