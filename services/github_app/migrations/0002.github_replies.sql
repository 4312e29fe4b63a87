-- depends: 0001.initial
-- Reply comments to post on GitHub (only written when a token is configured).

CREATE TABLE github_replies (
    id text PRIMARY KEY,
    repository text NOT NULL,
    number bigint NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    posted_at timestamptz,
    last_error text
);

CREATE INDEX github_replies_due ON github_replies (next_attempt_at) WHERE posted_at IS NULL;
