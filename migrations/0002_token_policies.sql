-- Tokens as Cloudflare's: policies (effect, permission groups, resources), a validity
-- window, a client address condition and usage times. Existing tokens keep what their
-- permission groups allowed: one allow policy over every account and their own user.
ALTER TABLE tokens ADD COLUMN policies TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN not_before TEXT;
ALTER TABLE tokens ADD COLUMN request_ip TEXT;
ALTER TABLE tokens ADD COLUMN modified_on TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN last_used_on TEXT;
UPDATE tokens SET
    modified_on = created_on,
    policies = '[{"id":"' || id || '","effect":"allow","permission_groups":' || permission_groups
        || ',"resources":{"com.cloudflare.api.account.*":"*","com.cloudflare.api.user.' || user_id || '":"*"}}]';
ALTER TABLE tokens DROP COLUMN permission_groups;
CREATE INDEX tokens_user ON tokens (user_id);
