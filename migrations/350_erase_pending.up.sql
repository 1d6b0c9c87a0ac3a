-- erase_pending: the portal was uninstalled with CLEAN, Bitrix24 confirmed
-- that the app is gone (not only by refusing its tokens: those are in
-- uninstall_recheck), and its data waits for the deferred erase
-- (internal/jobs, uninstall.go). The erase, a reinstall, or an uninstall
-- without CLEAN that keeps the data clears it. The hourly maintenance queues
-- the erase again for a portal still marked whose erase job was lost.
ALTER TABLE portals ADD COLUMN erase_pending boolean NOT NULL DEFAULT false;

-- Portals whose erase was lost before this file: uninstalled by a CLEAN
-- event Bitrix24 confirmed (the event resolved with the uninstall, in its
-- transaction), not in recheck, not erased (the erase drops the
-- application token, an uninstall keeps it). Only those uninstalled within
-- 80 days: the erase job reads the events without CLEAN around the
-- uninstall, which keep the data, and those are deleted 90 days after they
-- were last seen, so an older portal's erase could no longer tell.
UPDATE portals p SET erase_pending = true
WHERE p.install_state = 'uninstalled' AND NOT p.uninstall_recheck AND p.application_token IS NOT NULL
  AND p.uninstalled_at > now() - interval '80 days'
  AND EXISTS (SELECT 1 FROM uninstall_events e
      WHERE e.portal_id = p.id AND e.clean AND e.state = 'confirmed'
        AND e.resolved_at >= p.uninstalled_at AND e.resolved_at < p.uninstalled_at + interval '1 minute');
