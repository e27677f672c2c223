-- Each email's memberships counted by status, kept by triggers (so every write, an
-- account's deletion, an import and a restore keep it alike): `GET /memberships`'s
-- `total_count` without counting the user's rows, which for a user in 5,000 accounts cost
-- more than the page. The two indexes serve its page in each order but the account's name
-- (an order by `m.id` read through `(email_lower, account_id)` sorted every membership of
-- the user first).
CREATE TABLE membership_email_counts (
    email_lower TEXT PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO membership_email_counts (email_lower, pending, accepted, rejected)
SELECT email_lower, SUM(status = 'pending'), SUM(status = 'accepted'), SUM(status = 'rejected')
FROM memberships GROUP BY email_lower;

CREATE TRIGGER membership_email_counts_insert AFTER INSERT ON memberships
BEGIN
    INSERT INTO membership_email_counts (email_lower, pending, accepted, rejected)
    VALUES (NEW.email_lower, NEW.status = 'pending', NEW.status = 'accepted', NEW.status = 'rejected')
    ON CONFLICT (email_lower) DO UPDATE SET
        pending = pending + excluded.pending,
        accepted = accepted + excluded.accepted,
        rejected = rejected + excluded.rejected;
END;

CREATE TRIGGER membership_email_counts_update AFTER UPDATE OF email_lower, status ON memberships
WHEN OLD.email_lower IS NOT NEW.email_lower OR OLD.status IS NOT NEW.status
BEGIN
    UPDATE membership_email_counts SET
        pending = pending - (OLD.status = 'pending'),
        accepted = accepted - (OLD.status = 'accepted'),
        rejected = rejected - (OLD.status = 'rejected')
    WHERE email_lower = OLD.email_lower;
    INSERT INTO membership_email_counts (email_lower, pending, accepted, rejected)
    VALUES (NEW.email_lower, NEW.status = 'pending', NEW.status = 'accepted', NEW.status = 'rejected')
    ON CONFLICT (email_lower) DO UPDATE SET
        pending = pending + excluded.pending,
        accepted = accepted + excluded.accepted,
        rejected = rejected + excluded.rejected;
END;

CREATE TRIGGER membership_email_counts_delete AFTER DELETE ON memberships
BEGIN
    UPDATE membership_email_counts SET
        pending = pending - (OLD.status = 'pending'),
        accepted = accepted - (OLD.status = 'accepted'),
        rejected = rejected - (OLD.status = 'rejected')
    WHERE email_lower = OLD.email_lower;
END;

CREATE INDEX memberships_email_id ON memberships (email_lower, id);
CREATE INDEX memberships_email_status ON memberships (email_lower, status, id);
