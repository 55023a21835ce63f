-- Unread messages keep ids and positions only: the text is in the log (the event at `seq`), so
-- the inbox projection, and what a server caches of it, stays small however large the
-- messages waiting in it are.
ALTER TABLE inbox DROP COLUMN content;

-- One row per tenant whose account stream (stream id = tenant id) has started: the fold of its
-- `user_created` / `user_renamed` events. Derived, like `sessions`.
CREATE TABLE users (
    tenant_id  uuid        PRIMARY KEY,
    name       text        NOT NULL,
    email      text,
    created_at timestamptz NOT NULL,
    version    integer     NOT NULL,
    last_seq   bigint      NOT NULL
);

-- Which rebuild of the projections is current. Servers decide appends on projection state they
-- read (or remembered) under some generation; every append statement checks that it is still
-- the current one, so a decision made before `projections rebuild` can never overwrite rebuilt
-- rows afterwards: it fails as stale, and the server reads again and decides again.
CREATE TABLE projection_generation (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint  NOT NULL
);
INSERT INTO projection_generation (generation) VALUES (1);

CREATE FUNCTION switchboard_require_generation(expected bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF expected IS DISTINCT FROM (SELECT generation FROM projection_generation) THEN
        RAISE EXCEPTION 'the projections were rebuilt after this append was decided'
            USING ERRCODE = 'SB001';
    END IF;
    RETURN true;
END
$$;
