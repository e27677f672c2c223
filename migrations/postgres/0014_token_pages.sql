-- A token list's page without reading the owner's every token: each owner's tokens
-- counted, kept by triggers (so a token's deletion, its owner's, an import and a restore
-- keep it alike); the page from an index in the list's order (issue time bytewise, as
-- SQLite and Rust compare it, then id); and the tokens that may have expired (those with
-- an expiry, or marked expired) through a partial index, to leave out of a list that
-- leaves them out.
CREATE TABLE token_counts (
    owner TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);

INSERT INTO token_counts (owner, n)
SELECT CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id ELSE 'account:' || account_id END,
    COUNT(*)
FROM tokens GROUP BY 1;

CREATE FUNCTION token_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE token_counts SET n = n - 1
        WHERE owner = CASE WHEN OLD.user_id IS NOT NULL THEN 'user:' || OLD.user_id
            ELSE 'account:' || OLD.account_id END;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO token_counts (owner, n)
        VALUES (CASE WHEN NEW.user_id IS NOT NULL THEN 'user:' || NEW.user_id
            ELSE 'account:' || NEW.account_id END, 1)
        ON CONFLICT (owner) DO UPDATE SET n = token_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER token_counts_insert AFTER INSERT ON tokens FOR EACH ROW
EXECUTE FUNCTION token_counts_follow();
CREATE TRIGGER token_counts_update AFTER UPDATE OF user_id, account_id ON tokens FOR EACH ROW
WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.account_id IS DISTINCT FROM NEW.account_id)
EXECUTE FUNCTION token_counts_follow();
CREATE TRIGGER token_counts_delete AFTER DELETE ON tokens FOR EACH ROW
EXECUTE FUNCTION token_counts_follow();

CREATE INDEX tokens_user_issued ON tokens (user_id, created_on COLLATE "C", id);
CREATE INDEX tokens_account_issued ON tokens (account_id, created_on COLLATE "C", id);
CREATE INDEX tokens_user_expiring ON tokens (user_id)
    WHERE expires_on IS NOT NULL OR status = 'expired';
CREATE INDEX tokens_account_expiring ON tokens (account_id)
    WHERE expires_on IS NOT NULL OR status = 'expired';
