-- One row per saved change of a portal's settings: who, when
-- and which fields changed. The Learn password is recorded only as
-- "changed", never its value.
CREATE TABLE settings_audit (
    id         bigserial PRIMARY KEY,
    portal_id  bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    -- The Bitrix24 user id of the admin who saved.
    user_id    bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    -- {"field": {"from": …, "to": …}, "learn_password": "changed", …}
    changes    jsonb NOT NULL
);

CREATE INDEX settings_audit_portal ON settings_audit (portal_id, changed_at DESC);
