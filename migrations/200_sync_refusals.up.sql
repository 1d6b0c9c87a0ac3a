-- Writes Learn refused for good (internal/syncer's refusals.go): a department
-- or user whose values Learn refused even cut to the shortest length the app
-- tries (docs/learn-api.md, "Long values"), and the managers of the Learn root
-- when Learn refuses them or answers and does not keep them (docs/learn-api.md,
-- "Unsettled behaviour"). The fingerprint is of the Bitrix24 values the write
-- stood for, so that later runs do not send it again until Bitrix24 changes
-- them. One row per object and part, overwritten by its next such refusal; a
-- row is read only by runs into the Learn account that refused (learn_account,
-- the syncer's AccountKey) and for a week after refused_at, and a row whose
-- fingerprint no longer matches is ignored.
CREATE TABLE sync_refusals (
    portal_id     bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('department', 'user')),
    b24_id        bigint NOT NULL,
    part          text NOT NULL CHECK (part IN ('values', 'links')),
    fingerprint   text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    learn_account text NOT NULL,
    refused_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, kind, b24_id, part)
);
