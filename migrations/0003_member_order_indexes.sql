-- Members pages are ordered and cut in the database: these serve the default order (id)
-- and the orders by email and by status within one account.
DROP INDEX memberships_account;
CREATE INDEX memberships_account_id ON memberships (account_id, id);
CREATE INDEX memberships_account_email ON memberships (account_id, email_lower, id);
CREATE INDEX memberships_account_status ON memberships (account_id, status, id);
