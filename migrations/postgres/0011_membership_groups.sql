-- Who is in each user group, by group, kept from `memberships.group_ids` by triggers (so
-- every write of a membership, an import and a restore keep it alike): a group's members
-- are found and paged by email through this key, rather than by matching the `group_ids`
-- text of every membership of the account. `status` is here so that a page and its count
-- leave rejected members out without reading their memberships. Bytewise order, as the
-- members pages.
CREATE TABLE membership_groups (
    group_id TEXT COLLATE "C" NOT NULL,
    email_lower TEXT COLLATE "C" NOT NULL,
    membership_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (group_id, email_lower, membership_id)
);
CREATE INDEX membership_groups_membership ON membership_groups (membership_id);

INSERT INTO membership_groups (group_id, email_lower, membership_id, status)
SELECT g->>'id', m.email_lower, m.id, m.status
FROM memberships m, jsonb_array_elements(m.group_ids::jsonb) g;

CREATE FUNCTION membership_groups_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM membership_groups WHERE membership_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO membership_groups (group_id, email_lower, membership_id, status)
        SELECT g->>'id', NEW.email_lower, NEW.id, NEW.status
        FROM jsonb_array_elements(NEW.group_ids::jsonb) g;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER membership_groups_insert AFTER INSERT ON memberships FOR EACH ROW
WHEN (NEW.group_ids <> '[]') EXECUTE FUNCTION membership_groups_follow();
CREATE TRIGGER membership_groups_update AFTER UPDATE OF group_ids, email_lower, status
ON memberships FOR EACH ROW
WHEN (OLD.group_ids IS DISTINCT FROM NEW.group_ids OR OLD.email_lower IS DISTINCT FROM NEW.email_lower
      OR OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION membership_groups_follow();
CREATE TRIGGER membership_groups_delete AFTER DELETE ON memberships FOR EACH ROW
WHEN (OLD.group_ids <> '[]') EXECUTE FUNCTION membership_groups_follow();

-- Each group's pending and accepted members counted, kept by the same writes: a members
-- page's `total_count` without counting the group's entries.
CREATE TABLE user_group_counts (
    group_id TEXT PRIMARY KEY,
    live BIGINT NOT NULL
);
INSERT INTO user_group_counts (group_id, live)
SELECT group_id, COUNT(*) FROM membership_groups WHERE status <> 'rejected' GROUP BY group_id;

CREATE FUNCTION user_group_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_group_counts (group_id, live) VALUES (NEW.group_id, 1)
        ON CONFLICT (group_id) DO UPDATE SET live = user_group_counts.live + 1;
    ELSE
        UPDATE user_group_counts SET live = live - 1 WHERE group_id = OLD.group_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_group_counts_insert AFTER INSERT ON membership_groups FOR EACH ROW
WHEN (NEW.status <> 'rejected') EXECUTE FUNCTION user_group_counts_follow();
CREATE TRIGGER user_group_counts_delete AFTER DELETE ON membership_groups FOR EACH ROW
WHEN (OLD.status <> 'rejected') EXECUTE FUNCTION user_group_counts_follow();

CREATE FUNCTION user_group_counts_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_group_counts WHERE group_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER user_group_counts_gone AFTER DELETE ON user_groups FOR EACH ROW
EXECUTE FUNCTION user_group_counts_gone();
