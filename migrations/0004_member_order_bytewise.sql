-- Members pages ordered by email sort bytewise. SQLite's default (BINARY) collation is
-- bytewise, so `memberships_account_email` already serves that order here; PostgreSQL
-- needs an index in its "C" collation (migrations/postgres/ holds its version of this file).
SELECT 1;
