-- uninstall_recheck: the portal was uninstalled by a CLEAN event that
-- Bitrix24 confirmed only by refusing its tokens (or by app.info's
-- INSTALLED false on tokens that worked), which an installed portal whose
-- payment lapsed also gets. Its tokens are kept until the deferred erase so
-- that the hourly maintenance and the erase can ask Bitrix24 again, and the
-- portal is restored if they work again (internal/jobs, uninstall.go).
ALTER TABLE portals ADD COLUMN uninstall_recheck boolean NOT NULL DEFAULT false;

-- The admin is told once that the app was reported removed and when the
-- data will be erased unless Bitrix24 shows the app working again.
ALTER TABLE portal_alerts DROP CONSTRAINT portal_alerts_state_check;
ALTER TABLE portal_alerts ADD CONSTRAINT portal_alerts_state_check
    CHECK (state IN ('needs_attention', 'needs_reconnect', 'held', 'erase_scheduled', 'uninstall_pending'));
