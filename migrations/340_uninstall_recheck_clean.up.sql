-- uninstall_clean: whether the uninstall that put the portal in
-- uninstall_recheck had CLEAN. An uninstall without CLEAN taken on refused
-- tokens is rechecked too (internal/jobs, uninstall.go); at the end of the
-- wait it keeps the data instead of erasing it, and the hourly maintenance,
-- which queues that end again when its job was lost, must know which.
-- Every portal in recheck before this file was put there by a CLEAN one.
ALTER TABLE portals ADD COLUMN uninstall_clean boolean NOT NULL DEFAULT false;
UPDATE portals SET uninstall_clean = true WHERE uninstall_recheck;

-- The admin of a portal uninstalled without CLEAN on refused tokens is told
-- that syncs stopped and resume by themselves, with no erase to announce.
ALTER TABLE portal_alerts DROP CONSTRAINT portal_alerts_state_check;
ALTER TABLE portal_alerts ADD CONSTRAINT portal_alerts_state_check
    CHECK (state IN ('needs_attention', 'needs_reconnect', 'held', 'erase_scheduled', 'uninstall_pending',
                     'uninstall_kept'));
