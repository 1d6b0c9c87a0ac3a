-- erase_pending: the portal was uninstalled with CLEAN, Bitrix24 confirmed
-- that the app is gone (not only by refusing its tokens: those are in
-- uninstall_recheck), and its data waits for the deferred erase
-- (internal/jobs, uninstall.go). The erase, a reinstall, or an uninstall
-- without CLEAN that keeps the data clears it. The hourly maintenance queues
-- the erase again for a portal still marked whose erase job was lost.
ALTER TABLE portals ADD COLUMN erase_pending boolean NOT NULL DEFAULT false;
