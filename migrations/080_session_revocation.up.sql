-- Iframe sessions are signed tokens that live up to two hours. These two
-- facts let the server end them early.
--
-- install_generation grows with every verified install of the portal (the
-- installer, or an admin's open of an uninstalled app), so a token minted
-- before an uninstall and reinstall names an older generation and is refused.
ALTER TABLE portals ADD COLUMN install_generation bigint NOT NULL DEFAULT 1;

-- A user whom Bitrix24 last reported as not a portal admin (their open of
-- the app checks it): admin sessions of this user act as read-only. The row
-- goes when Bitrix24 reports them admin again, before any admin session is
-- minted; demoted_at is kept for the record only.
CREATE TABLE portal_demoted_users (
    portal_id  bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    user_id    bigint NOT NULL,
    demoted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, user_id)
);
