-- Double opt-in of the alert address. The address in
-- portal_settings.alert_email is whatever a portal admin typed, and anyone can
-- make a portal, so the alert worker e-mails it only once its owner has
-- opened the link of a confirmation e-mail and pressed the button.
--
-- Addresses saved before this migration are not confirmed by it, not even
-- those equal to the saving admin's Bitrix24 profile address or those that
-- already received alerts: neither proves that the mailbox's owner asked for
-- the e-mails (a profile address is the portal admin's own entry too). Their
-- alerts stop until an admin presses "Send a confirmation link" on the
-- settings page and the owner confirms.

-- The addresses confirmed for a portal, lower-cased; alerts go to
-- portal_settings.alert_email only while its lower-cased form is here.
CREATE TABLE alert_confirmed (
    portal_id    bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    address      text NOT NULL CHECK (address = lower(address)),
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, address)
);

-- The links sent: only the SHA-256 of each random token is stored, bound to
-- the portal and the address it confirms; single use (used_at), and dead
-- after expires_at.
CREATE TABLE alert_confirm_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    portal_id  bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    address    text NOT NULL CHECK (address = lower(address)),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX alert_confirm_tokens_portal ON alert_confirm_tokens (portal_id, address);

-- One row per confirmation e-mail queued, counted against a cap per portal
-- and a cap per recipient (recipient: the address lower-cased, without a
-- "+tag", so one mailbox is one recipient) across all portals, so that many
-- portals made for the purpose cannot flood one mailbox. A deleted portal's
-- rows keep counting for their recipient.
CREATE TABLE alert_confirm_sends (
    portal_id bigint REFERENCES portals(id) ON DELETE SET NULL,
    address   text NOT NULL CHECK (address = lower(address)),
    recipient text NOT NULL,
    sent_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_confirm_sends_portal ON alert_confirm_sends (portal_id, sent_at);
CREATE INDEX alert_confirm_sends_recipient ON alert_confirm_sends (recipient, sent_at);
