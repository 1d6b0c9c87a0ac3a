-- items: how many report rows (sync_run_items) a run has, kept by the
-- statements that write the rows, so the status panel says a preview's size
-- without counting its rows on every poll. A running run's counts are kept
-- the same way (they were counted from its rows on every poll).
ALTER TABLE sync_runs ADD COLUMN items integer NOT NULL DEFAULT 0 CHECK (items >= 0);

-- A portal keeps only its newest finished preview: each preview holds a row
-- per planned step (hundreds of thousands on a large portal), and a newer
-- one says all an older one did.
DELETE FROM sync_runs r
WHERE r.trigger = 'preview' AND r.status <> 'running'
    AND EXISTS (SELECT 1 FROM sync_runs n
        WHERE n.portal_id = r.portal_id AND n.trigger = 'preview' AND n.status = 'previewed' AND n.id > r.id);

UPDATE sync_runs r SET items = c.n
FROM (SELECT run_id, count(*) AS n FROM sync_run_items GROUP BY run_id) c
WHERE c.run_id = r.id;
