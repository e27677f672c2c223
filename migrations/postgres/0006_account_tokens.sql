-- Account-owned API tokens: a token belongs to a user or to an account, never both. An
-- account's tokens go with it; a user's with the user.
ALTER TABLE tokens ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE tokens ADD COLUMN account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE;
ALTER TABLE tokens ADD COLUMN creator_email TEXT;
ALTER TABLE tokens ADD CONSTRAINT tokens_one_owner CHECK ((user_id IS NULL) <> (account_id IS NULL));
CREATE INDEX tokens_account ON tokens (account_id);
