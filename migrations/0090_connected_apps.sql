-- Connected apps: MCP hosts (claude.ai, Claude Desktop, ChatGPT, …) that signed in by OAuth
-- (`crate::oauth`). Each connection is an API key of the person who allowed it (a row in
-- `api_keys`, so it is listed, revoked and cached like every key), for the MCP endpoint only.
-- As with every credential table, no secret is stored: only SHA-256 digests. Bookkeeping, not
-- conversation: the facts a person would audit (connected, disconnected) are events.

-- A connected app's access tokens are short-lived JWTs naming its key and audience; they are
-- checked by signature, audience and the key's record, not by digest (a new one is issued on
-- every refresh). Ordinary keys keep their digest.
ALTER TABLE api_keys ALTER COLUMN token_sha256 DROP NOT NULL;

-- Clients that registered themselves (RFC 7591 dynamic registration). Clients identified by a
-- metadata document (an https client_id) are not stored: their document is fetched and cached.
CREATE TABLE oauth_clients (
    client_id     text        PRIMARY KEY,
    client_name   text        NOT NULL,
    client_uri    text,
    logo_uri      text,
    redirect_uris text[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Unused registrations are forgotten after a day, and there is a cap on how many a day brings.
CREATE INDEX oauth_clients_by_age ON oauth_clients (created_at);

-- Authorization codes: handed to the client's redirect URI after the person allowed it, good
-- once and briefly. Single use is enforced by the statement that redeems a code (it sets
-- used_at only where used_at IS NULL); a code presented again revokes what it was exchanged for.
CREATE TABLE oauth_codes (
    code_sha256    bytea       PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    client_id      text        NOT NULL,
    client_name    text        NOT NULL,
    redirect_uri   text        NOT NULL,
    -- The authorization request named it (the token request must then name it too).
    redirect_uri_given boolean NOT NULL,
    code_challenge text        NOT NULL,
    resource       text        NOT NULL,
    scope          text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    -- The key the code was exchanged for.
    key_id         uuid,
    CONSTRAINT oauth_codes_digest_length CHECK (octet_length(code_sha256) = 32)
);

CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

-- The grant behind a connected app's key: who the client is, what it may reach, and its current
-- refresh token (rotated on every use; the previous one is kept to recognise a replay, which
-- ends the grant).
CREATE TABLE oauth_grants (
    key_id                  uuid        PRIMARY KEY REFERENCES api_keys (id),
    tenant_id               uuid        NOT NULL,
    client_id               text        NOT NULL,
    redirect_uri            text        NOT NULL,
    resource                text        NOT NULL,
    refresh_sha256          bytea       NOT NULL,
    previous_refresh_sha256 bytea,
    refreshed_at            timestamptz NOT NULL DEFAULT now(),
    -- A refresh token unused this long is no longer accepted (renewed on every refresh).
    refresh_expires_at      timestamptz NOT NULL,
    CONSTRAINT oauth_grants_digest_length CHECK (octet_length(refresh_sha256) = 32)
);

CREATE INDEX oauth_grants_by_tenant ON oauth_grants (tenant_id);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id);
