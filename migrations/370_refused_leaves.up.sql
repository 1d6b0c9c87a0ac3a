-- A deactivation Learn refused (internal/syncer's refusals.go, part
-- 'status'): the account owner, whom Learn never deactivates, or a user the
-- credentials may not deactivate. The row's fingerprint is the Learn user's
-- ID. It expires after a week as the other parts do; meanwhile the
-- deactivation is not sent again unless the person is synced again (the row
-- is then deleted) or an admin runs "Sync now".
ALTER TABLE sync_refusals DROP CONSTRAINT sync_refusals_part_check;
ALTER TABLE sync_refusals ADD CONSTRAINT sync_refusals_part_check CHECK (part IN ('values', 'links', 'status'));
