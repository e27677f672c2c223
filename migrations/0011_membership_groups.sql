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

-- Each group's pending and accepted members counted, kept by the same writes: a members
-- page's `total_count` without counting the group's entries.
CREATE TABLE user_group_counts (
    group_id TEXT PRIMARY KEY,
    live INTEGER NOT NULL
);
INSERT INTO user_group_counts (group_id, live)
SELECT group_id, COUNT(*) FROM membership_groups WHERE status <> 'rejected' GROUP BY group_id;

CREATE TRIGGER user_group_counts_insert AFTER INSERT ON membership_groups
WHEN NEW.status <> 'rejected'
BEGIN
    INSERT INTO user_group_counts (group_id, live) VALUES (NEW.group_id, 1)
    ON CONFLICT (group_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER user_group_counts_delete AFTER DELETE ON membership_groups
WHEN OLD.status <> 'rejected'
BEGIN
    UPDATE user_group_counts SET live = live - 1 WHERE group_id = OLD.group_id;
END;

CREATE TRIGGER user_group_counts_gone AFTER DELETE ON user_groups
BEGIN
    DELETE FROM user_group_counts WHERE group_id = OLD.id;
END;
