-- Webhooks: each follows the events table with its own cursor, the seq of the
-- last event it delivered or skipped, moved only after the receiver answered
-- 2xx; so nothing is lost across crashes (delivery is at least once: a crash
-- between the answer and the cursor write sends that event again, with the
-- same X-Moor-Delivery id).
CREATE TABLE webhooks (
    id                uuid PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    url               text NOT NULL,
    events            text[] NOT NULL,
    -- The signing secret, sealed with MOOR_SECRET_KEY (AES-GCM, the id as
    -- additional data): it must be read back to sign, so it cannot be hashed.
    secret            bytea NOT NULL,
    cursor            bigint NOT NULL,
    failures          integer NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    last_delivered_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL
);
