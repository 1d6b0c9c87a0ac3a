-- One employee on demand: a run of one person's steps (trigger on_demand),
-- and a person's history read by Bitrix24 id across runs.
ALTER TABLE sync_runs DROP CONSTRAINT IF EXISTS sync_runs_trigger_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_trigger_check
    CHECK (trigger IN ('scheduled', 'manual', 'approved', 'preview', 'on_demand'));

CREATE INDEX sync_run_items_person ON sync_run_items (portal_id, kind, b24_id, id DESC);
