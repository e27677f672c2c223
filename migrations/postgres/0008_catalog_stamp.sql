-- Names the state of an account's catalog (its custom roles, resource groups and user
-- groups): every change to any of them, an import and a restore write a new random stamp
-- in the same transaction. A process keeps catalogs by account and stamp, and reads the
-- stamp with the account's row: a catalog is reused only while it is the one the database
-- holds, in any process.
ALTER TABLE accounts ADD COLUMN catalog_stamp TEXT NOT NULL DEFAULT '';
UPDATE accounts SET catalog_stamp = md5(random()::text || id);
