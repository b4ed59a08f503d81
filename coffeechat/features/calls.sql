-- The calls feature's table (coffeechat/features/calls.py; format: coffeechat/sql.py).

-- migration 1: who is in a call (ringing or answered), claimed by the call's home node
-- One row per user: the busy rule (one call per user at a time) holds across nodes because a
-- claim is taken with INSERT ... ON CONFLICT DO UPDATE ... WHERE the old one expired.  The home
-- node refreshes its claims' expires_at while the call lasts; a dead node's claims run out.
CREATE TABLE call_parties (
    user_id BIGINT PRIMARY KEY,
    channel TEXT NOT NULL,
    token TEXT NOT NULL,
    node TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX call_parties_node ON call_parties (node);
