-- Sync state: which Learn object each Bitrix24 object became, and the record
-- of every run.

-- One row per synced Bitrix24 department or user. fingerprint is a hash of
-- the Bitrix24 fields last applied, so an unchanged object costs no write.
CREATE TABLE sync_mappings (
    portal_id   bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('department', 'user')),
    b24_id      bigint NOT NULL,
    learn_id    text NOT NULL,
    fingerprint text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, kind, b24_id)
);

CREATE INDEX sync_mappings_learn_id ON sync_mappings (portal_id, kind, learn_id);

CREATE TABLE sync_runs (
    id          bigserial PRIMARY KEY,
    portal_id   bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    trigger     text NOT NULL CHECK (trigger IN ('scheduled', 'manual', 'approved', 'preview')),
    -- partial: finished, some objects refused or failed; held: finished,
    -- deactivations wait for the admin's approval.
    status      text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'partial', 'held', 'failed', 'previewed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    counts      jsonb NOT NULL DEFAULT '{}',
    error       text NOT NULL DEFAULT '',
    -- Bitrix24 user ids whose deactivation was held.
    held        jsonb NOT NULL DEFAULT '[]',
    -- The approved run that released this run's held deactivations.
    resolved_by bigint REFERENCES sync_runs(id) ON DELETE SET NULL
);

CREATE INDEX sync_runs_portal_started ON sync_runs (portal_id, started_at DESC);

CREATE TABLE sync_run_items (
    id         bigserial PRIMARY KEY,
    run_id     bigint NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
    portal_id  bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('department', 'user')),
    b24_id     bigint NOT NULL,
    learn_id   text NOT NULL DEFAULT '',
    action     text NOT NULL,
    before     jsonb,
    after      jsonb,
    reason     text NOT NULL DEFAULT '',
    status     text NOT NULL CHECK (status IN ('applied', 'refused', 'held', 'planned', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sync_run_items_run ON sync_run_items (portal_id, run_id, id);
