-- identity: link requests (wallet side), confirmations (GitHub side), links and outcomes.

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

-- The wallet's half: a SIWE message verified on arrival. A nonce is single-use.
CREATE TABLE link_requests (
    code text PRIMARY KEY,
    address text NOT NULL,          -- lower-case 0x address
    login text NOT NULL,            -- the login the signed message names
    message text NOT NULL,
    signature text NOT NULL,
    nonce text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- GitHub's half: who commented $link:<code>$.
CREATE TABLE link_confirmations (
    code text PRIMARY KEY,
    github_id bigint NOT NULL,
    login text NOT NULL,
    comment_url text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- One wallet -> one GitHub account; one account -> many wallets.
CREATE TABLE links (
    address text PRIMARY KEY,       -- lower-case 0x address
    github_id bigint NOT NULL,
    login text NOT NULL,
    linked_at timestamptz NOT NULL,
    code text NOT NULL
);
CREATE INDEX links_github_id ON links (github_id);

-- The decision for a code, made once.
CREATE TABLE link_outcomes (
    code text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('linked', 'refused')),
    reason text,
    address text,
    login text,
    github_id bigint,
    decided_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'refused') = (reason IS NOT NULL))
);
