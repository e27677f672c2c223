-- Members pages ordered by email sort bytewise (`COLLATE "C"`), as SQLite and Rust do,
-- whatever the database's locale. An index in the default collation cannot serve that
-- order, so PostgreSQL sorted every member of the account for each page: this one can.
-- (SQLite runs migrations/0004 instead: its default collation is already bytewise.)
CREATE INDEX memberships_account_email_bytewise
    ON memberships (account_id, email_lower COLLATE "C", id);
