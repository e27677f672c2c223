-- The web console's sign-ins, kept in the database so that every process serving it knows
-- them. A row holds the session id's digest (the id itself is only in the browser's
-- cookie) and the credential signed in with as compared (the folded email and the key's
-- digest, or the token's digest): each page checks it again, so changing the key or
-- deleting the token ends the session. Not exported, imported or restored: a session
-- belongs to a browser, not to the data.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    email_lower TEXT,
    credential_hash TEXT NOT NULL,
    created_on TEXT NOT NULL,
    seen_on TEXT NOT NULL
);
CREATE INDEX console_sessions_created ON console_sessions (created_on);
CREATE INDEX console_sessions_credential ON console_sessions (credential_hash, created_on);
