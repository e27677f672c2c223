-- IAM user groups: a named set of an account's members with policies of their own.
CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    policies TEXT NOT NULL,
    created_on TEXT NOT NULL,
    modified_on TEXT NOT NULL
);
CREATE INDEX user_groups_account ON user_groups (account_id);

-- The groups a membership is in, as a JSON array of {"id", "added_on"}: read with the
-- membership, so authorizing a member takes no other query.
ALTER TABLE memberships ADD COLUMN group_ids TEXT NOT NULL DEFAULT '[]';
