-- A department or user write Learn refused even with its values cut to the
-- shortest length the app tries (docs/learn-api.md, "Long values"): the
-- fingerprint of the Bitrix24 values it stood for, so that later runs report
-- it without sending it again until Bitrix24 changes them. One row per
-- object, overwritten by its next such refusal; a row whose fingerprint no
-- longer matches is ignored.
CREATE TABLE sync_refusals (
    portal_id   bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('department', 'user')),
    b24_id      bigint NOT NULL,
    fingerprint text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    refused_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, kind, b24_id)
);
