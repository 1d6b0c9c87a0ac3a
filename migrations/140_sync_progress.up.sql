-- A running run's progress, for the status panel: the phase it is in and,
-- once it writes, how many of its planned steps are done. The syncer
-- updates the phase when it changes and the done count at most about once
-- a second; write_started_at and the done count give the time left.
ALTER TABLE sync_runs
    ADD COLUMN phase text NOT NULL DEFAULT ''
        CHECK (phase IN ('', 'read', 'read_learn', 'read_bitrix24', 'plan', 'write', 'finish')),
    ADD COLUMN planned integer NOT NULL DEFAULT 0 CHECK (planned >= 0),
    ADD COLUMN done integer NOT NULL DEFAULT 0 CHECK (done >= 0),
    ADD COLUMN write_started_at timestamptz;
