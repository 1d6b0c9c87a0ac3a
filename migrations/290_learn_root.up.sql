-- The Learn account a portal's runs reached, by its root department's id:
-- one account answers on several addresses (docs/learn-api.md, "Where the
-- API answers"), and the ownership tables key it by the address, so a run
-- refuses an account another portal reaches under another address
-- (docs/learn-api.md, "One account, several portals"). NULL until a run
-- learns it; a save that changes the address clears it.
ALTER TABLE portal_settings ADD COLUMN learn_root_id text;

CREATE INDEX portal_settings_learn_root ON portal_settings (learn_root_id) WHERE learn_root_id IS NOT NULL;
