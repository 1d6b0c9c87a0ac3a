-- The secret the enrol page shows belongs to the session it was shown to,
-- and only that session can confirm it. Kept on the account, it was shown
-- to every session that opened the page: someone who signed in with a known
-- password read the secret the manager would confirm later, and the second
-- factor then let them in. managers.totp_pending is no longer used; the
-- secrets it holds may have been seen, so they go.
ALTER TABLE manager_sessions ADD COLUMN totp_pending bytea;
UPDATE managers SET totp_pending = NULL WHERE totp_pending IS NOT NULL;
