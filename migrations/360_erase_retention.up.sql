-- erase_retention: the erase erase_pending waits for was queued by the data
-- retention of a portal whose tokens Bitrix24 refused too long
-- (internal/jobs, retention.go), not by an uninstall event, so the hourly
-- maintenance queues a lost one again as the retention's erase, which no
-- uninstall event without CLEAN keeps. Cleared with erase_pending.
ALTER TABLE portals ADD COLUMN erase_retention boolean NOT NULL DEFAULT false;

-- Portals whose retention erase was lost before this file: taken as
-- uninstalled by the retention (its audit line, written in the same
-- transaction), not in recheck, not erased (the erase drops the
-- application token), not installed again.
UPDATE portals p SET erase_pending = true, erase_retention = true
WHERE p.install_state = 'uninstalled' AND NOT p.uninstall_recheck AND p.application_token IS NOT NULL
  AND EXISTS (SELECT 1 FROM manager_audit a
      WHERE a.portal_id = p.id AND a.action = 'retention_erase'
        AND a.created_at >= p.uninstalled_at - interval '1 minute');
