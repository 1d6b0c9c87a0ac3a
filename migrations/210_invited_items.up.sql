-- Run report rows for employees invited to Bitrix24 who have not accepted yet
-- ('invited': not created in Learn until they do) and the one row saying that
-- Bitrix24 could not tell them apart ('notice').
ALTER TABLE sync_run_items DROP CONSTRAINT sync_run_items_status_check;
ALTER TABLE sync_run_items ADD CONSTRAINT sync_run_items_status_check
    CHECK (status IN ('applied', 'refused', 'held', 'planned', 'failed', 'waiting', 'conflict', 'invited', 'notice'));
