-- The audit log: one row per change, written in the change's own transaction. `created_on`
-- has a fixed width (microseconds, `Z`), so text order is time order and pages are read by
-- keyset on (created_on, id), compared bytewise (COLLATE "C", as SQLite does). No foreign keys: an entry outlives what it is about (an
-- account's deletion is itself an entry, in its deleter's log). No index on the random
-- `id` (ids are 128 random bits): an index on it dirtied one more page, at a random place,
-- in every write's commit; a lookup by id goes through the scope's index.
CREATE TABLE audit_logs (
    id TEXT NOT NULL,
    account_id TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    actor_ip TEXT,
    token_id TEXT,
    token_name TEXT,
    action_type TEXT NOT NULL,
    description TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    ray_id TEXT,
    method TEXT,
    uri TEXT,
    created_on TEXT NOT NULL
);
CREATE INDEX audit_logs_account ON audit_logs (account_id, created_on COLLATE "C", id COLLATE "C");
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, created_on COLLATE "C", id COLLATE "C");
