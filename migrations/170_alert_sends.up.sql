-- One row per alert e-mail sent. The alert address is the admin's own
-- entry, unverified, so the worker caps the e-mails per portal and day by
-- counting these rows; it deletes a portal's rows older than two days as
-- it goes.
CREATE TABLE alert_sends (
    portal_id bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    sent_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_sends_portal ON alert_sends (portal_id, sent_at);
