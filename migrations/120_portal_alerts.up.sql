-- Alerts to the portal admin who saved the settings: the address (prefilled
-- from their Bitrix24 profile, editable), an off switch and the language of
-- the session that saved, which the e-mails are written in.
ALTER TABLE portal_settings
    ADD COLUMN alert_email text NOT NULL DEFAULT '',
    ADD COLUMN alerts_off  boolean NOT NULL DEFAULT false,
    ADD COLUMN alert_lang  text NOT NULL DEFAULT '';

-- One row per portal and alert state: whether the state holds (active) and
-- what the admin was last told (notified). An e-mail job is queued in the
-- transaction that flips active; the job sends only while active still
-- differs from notified, so a state that flaps back before the send costs
-- no e-mail.
CREATE TABLE portal_alerts (
    portal_id  bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    state      text NOT NULL CHECK (state IN ('needs_attention', 'needs_reconnect', 'held')),
    active     boolean NOT NULL,
    notified   boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, state)
);

-- The console's filter of held portals.
CREATE INDEX portal_alerts_active ON portal_alerts (state, portal_id) WHERE active;
