-- github-app: deliveries seen, intents recorded, and the event outbox.

CREATE TABLE outbox (
    id text PRIMARY KEY,
    subject text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE processed_events (
    event_type text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, event_id)
);

-- One row per webhook delivery answered with 200; a redelivery gets the stored answer.
CREATE TABLE deliveries (
    delivery_id text PRIMARY KEY,
    event text NOT NULL,
    action text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    response jsonb
);

-- The intent id is derived from where the bounty was written, so a comment that
-- arrives twice (under any delivery id) is one intent.
CREATE TABLE intents (
    intent_id text PRIMARY KEY,
    repository text NOT NULL,
    number bigint NOT NULL CHECK (number > 0),
    kind text NOT NULL CHECK (kind IN ('issue', 'pull_request')),
    source text NOT NULL
        CHECK (source IN ('issue_comment', 'issue', 'pull_request', 'review_comment')),
    source_id bigint NOT NULL CHECK (source_id > 0),
    match_index integer NOT NULL CHECK (match_index >= 0),
    denomination text NOT NULL,
    amount numeric(78, 0) NOT NULL CHECK (amount > 0),
    author_id bigint NOT NULL,
    author_login text NOT NULL,
    html_url text NOT NULL,
    source_url text NOT NULL,
    signing_url text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX intents_by_thread ON intents (repository, number);
