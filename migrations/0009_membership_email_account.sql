-- A user's memberships by email, now with the account: the same index serves "this user's
-- memberships" and "this user's membership in this account". PostgreSQL's generic plan for
-- an account read (a member by id or the caller by email, in one account) took the email
-- alone and filtered the user's every membership by account (201 rows for a user in 201
-- accounts, where the rest of the read took a few).
CREATE INDEX memberships_email_account ON memberships (email_lower, account_id);
DROP INDEX memberships_email;
