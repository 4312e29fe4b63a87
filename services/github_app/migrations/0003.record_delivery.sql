-- depends: 0002.github_replies
-- A delivery recorded in one round trip: github-app calls record_delivery() once per
-- webhook, in autocommit, so the statement is its transaction. The rules are those of
-- the Python code it replaces (services/github_app/intents.py says them):
--   * the delivery id is claimed first; a delivery seen before changes nothing and gets
--     its stored answer, marked duplicate;
--   * an intent that exists already (the same text under another delivery id) is
--     answered from its stored row, and its event and reply are not written again;
--   * events go to the outbox and replies to github_replies, each once per id.
-- Each statement takes a fresh snapshot (READ COMMITTED), so an intent a concurrent
-- delivery committed while this one waited on its key is read back, as before.
--
-- p: {delivery_id, event, action, received_at,
--     intents:  [rows of `intents`, in the order of the comment's matches],
--     outbox:   [{id, subject, payload (the CloudEvent's JSON text), intent_id}],
--     replies:  [{id, repository, number, body, intent_id}],
--     response: the answer without "delivery" and "intents", which are added here}
-- An outbox or reply entry with an intent_id is written only when that intent is new.

CREATE FUNCTION record_delivery(
    p jsonb,
    OUT answer jsonb,
    OUT repeated boolean,
    OUT new_events boolean,
    OUT new_replies boolean
)
LANGUAGE plpgsql AS $$
DECLARE
    wanted intents;
    got intents;
    answers jsonb := '[]';
    created text[] := '{}';
BEGIN
    INSERT INTO deliveries (delivery_id, event, action, received_at)
    VALUES (p->>'delivery_id', p->>'event', p->>'action', (p->>'received_at')::timestamptz)
    ON CONFLICT (delivery_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT coalesce(d.response, '{}') || '{"duplicate": true}' INTO answer
        FROM deliveries d WHERE d.delivery_id = p->>'delivery_id';
        answer := coalesce(answer, '{"duplicate": true}');
        repeated := true;
        new_events := false;
        new_replies := false;
        RETURN;
    END IF;

    FOR wanted IN SELECT * FROM jsonb_populate_recordset(NULL::intents, p->'intents') LOOP
        -- Columns named, so a column a later migration adds keeps its default.
        INSERT INTO intents (
            intent_id, repository, number, kind, source, source_id, match_index,
            denomination, amount, author_id, author_login, html_url, source_url,
            signing_url, created_at, expires_at
        ) VALUES (
            wanted.intent_id, wanted.repository, wanted.number, wanted.kind, wanted.source,
            wanted.source_id, wanted.match_index, wanted.denomination, wanted.amount,
            wanted.author_id, wanted.author_login, wanted.html_url, wanted.source_url,
            wanted.signing_url, wanted.created_at, wanted.expires_at
        ) ON CONFLICT (intent_id) DO NOTHING;
        IF FOUND THEN
            got := wanted;
            created := created || wanted.intent_id;
        ELSE
            SELECT * INTO STRICT got FROM intents i WHERE i.intent_id = wanted.intent_id;
        END IF;
        answers := answers || jsonb_build_object(
            'intent_id', got.intent_id,
            'signing_url', got.signing_url,
            'denomination', got.denomination,
            'amount', got.amount::text
        );
    END LOOP;

    INSERT INTO outbox (id, subject, payload)
    SELECT e.id, e.subject, convert_to(e.payload, 'UTF8')
    FROM jsonb_to_recordset(p->'outbox') AS e(id text, subject text, payload text, intent_id text)
    WHERE e.intent_id IS NULL OR e.intent_id = ANY (created)
    ON CONFLICT (id) DO NOTHING;
    new_events := FOUND;

    INSERT INTO github_replies (id, repository, number, body)
    SELECT r.id, r.repository, r.number, r.body
    FROM jsonb_to_recordset(p->'replies')
        AS r(id text, repository text, number bigint, body text, intent_id text)
    WHERE r.intent_id IS NULL OR r.intent_id = ANY (created)
    ON CONFLICT (id) DO NOTHING;
    new_replies := FOUND;

    answer := p->'response' || jsonb_build_object('delivery', p->>'delivery_id', 'intents', answers);
    UPDATE deliveries SET response = answer WHERE delivery_id = p->>'delivery_id';
    repeated := false;
END
$$;
