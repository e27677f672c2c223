-- Account-owned API tokens: a token belongs to a user or to an account, never both. An
-- account's tokens go with it; a user's with the user. SQLite cannot relax NOT NULL in
-- place, so the table is rebuilt (nothing references it).
CREATE TABLE tokens_new (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'expired')),
    expires_on TEXT,
    created_on TEXT NOT NULL,
    policies TEXT NOT NULL DEFAULT '[]',
    not_before TEXT,
    request_ip TEXT,
    modified_on TEXT NOT NULL DEFAULT '',
    last_used_on TEXT,
    creator_email TEXT,
    CHECK ((user_id IS NULL) <> (account_id IS NULL))
);
INSERT INTO tokens_new (id, user_id, name, token_hash, status, expires_on, created_on,
    policies, not_before, request_ip, modified_on, last_used_on)
SELECT id, user_id, name, token_hash, status, expires_on, created_on,
    policies, not_before, request_ip, modified_on, last_used_on FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_account ON tokens (account_id);
