-- The ledger: one row per intent, one per (intent, wallet) signature, plus the
-- transactional outbox and the consumer's idempotency keys.

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

CREATE TABLE bounties (
    intent_id text PRIMARY KEY CHECK (intent_id ~ '^0x[0-9a-f]{64}$'),
    repository text NOT NULL CHECK (repository = lower(repository)),
    number bigint NOT NULL CHECK (number >= 1),
    -- issue or pull_request; guessed from the URL until bounty.requested says it
    kind text NOT NULL CHECK (kind IN ('issue', 'pull_request')),
    source text NOT NULL,
    source_id bigint NOT NULL,
    denomination text NOT NULL,
    amount NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    author_id bigint NOT NULL,
    author_login text,
    html_url text NOT NULL,
    source_url text,
    signing_url text,
    deadline bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    -- true once bounty.requested arrived (a row may start from a signature)
    requested boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bounties_by_issue ON bounties (repository, number);
CREATE INDEX bounties_by_time ON bounties (created_at DESC, intent_id);

CREATE TABLE signatures (
    intent_id text NOT NULL REFERENCES bounties (intent_id),
    address text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    signature text NOT NULL,
    message jsonb NOT NULL,
    signed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- false when the signed message contradicts the recorded intent: never counted
    valid boolean NOT NULL,
    invalid_reason text,
    PRIMARY KEY (intent_id, address)
);
