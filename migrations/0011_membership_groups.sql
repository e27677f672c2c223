-- Who is in each user group, by group, kept from `memberships.group_ids` by triggers (so
-- every write of a membership, an import and a restore keep it alike): a group's members
-- are found and paged by email through this key, rather than by matching the `group_ids`
-- text of every membership of the account. `status` is here so that a page and its count
-- leave rejected members out without reading their memberships.
CREATE TABLE membership_groups (
    group_id TEXT NOT NULL,
    email_lower TEXT NOT NULL,
    membership_id TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (group_id, email_lower, membership_id)
) WITHOUT ROWID;
CREATE INDEX membership_groups_membership ON membership_groups (membership_id);

INSERT INTO membership_groups (group_id, email_lower, membership_id, status)
SELECT json_extract(g.value, '$.id'), m.email_lower, m.id, m.status
FROM memberships m, json_each(m.group_ids) g;

CREATE TRIGGER membership_groups_insert AFTER INSERT ON memberships
WHEN NEW.group_ids <> '[]'
BEGIN
    INSERT INTO membership_groups (group_id, email_lower, membership_id, status)
    SELECT json_extract(g.value, '$.id'), NEW.email_lower, NEW.id, NEW.status
    FROM json_each(NEW.group_ids) g;
END;

CREATE TRIGGER membership_groups_update AFTER UPDATE OF group_ids, email_lower, status ON memberships
WHEN OLD.group_ids IS NOT NEW.group_ids OR OLD.email_lower IS NOT NEW.email_lower
    OR OLD.status IS NOT NEW.status
BEGIN
    DELETE FROM membership_groups WHERE membership_id = OLD.id;
    INSERT INTO membership_groups (group_id, email_lower, membership_id, status)
    SELECT json_extract(g.value, '$.id'), NEW.email_lower, NEW.id, NEW.status
    FROM json_each(NEW.group_ids) g;
END;

CREATE TRIGGER membership_groups_delete AFTER DELETE ON memberships
WHEN OLD.group_ids <> '[]'
BEGIN
    DELETE FROM membership_groups WHERE membership_id = OLD.id;
END;
