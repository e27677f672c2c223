-- Roster's schema. Memberships attach to users by folded email, so an invitation made
-- before the invitee has a user becomes theirs the moment one exists.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_lower TEXT NOT NULL UNIQUE,
    first_name TEXT,
    last_name TEXT,
    telephone TEXT,
    country TEXT,
    zipcode TEXT,
    two_factor BOOLEAN NOT NULL DEFAULT FALSE,
    api_key_hash TEXT NOT NULL,
    created_on TEXT NOT NULL,
    modified_on TEXT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('standard', 'enterprise')),
    created_on TEXT NOT NULL,
    enforce_twofactor BOOLEAN NOT NULL DEFAULT FALSE,
    abuse_contact_email TEXT,
    default_nameservers TEXT NOT NULL DEFAULT 'cloudflare.standard',
    use_account_custom_ns_by_default BOOLEAN NOT NULL DEFAULT FALSE,
    managed_by TEXT
);

CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE resource_groups (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX resource_groups_account ON resource_groups (account_id);

CREATE TABLE memberships (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_lower TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    grants TEXT NOT NULL,
    code TEXT NOT NULL,
    api_access_enabled BOOLEAN,
    created_on TEXT NOT NULL,
    modified_on TEXT NOT NULL
);
-- One live (pending or accepted) membership per account and email; rejected ones stay as
-- history and do not block a new invitation.
CREATE UNIQUE INDEX memberships_live ON memberships (account_id, email_lower)
    WHERE status IN ('pending', 'accepted');
CREATE INDEX memberships_account ON memberships (account_id);
CREATE INDEX memberships_email ON memberships (email_lower);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    permission_groups TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'expired')),
    expires_on TEXT,
    created_on TEXT NOT NULL
);
