-- ONAPPUNINSTALL events that carried the portal's application_token, and what
-- Bitrix24 said when the app asked it with the portal's stored tokens. Every
-- portal user sees the application_token in the iframe POST, so the event
-- alone proves nothing: it is acted on only when Bitrix24 refuses the stored
-- tokens (confirmed). While Bitrix24 still accepts them the event changes
-- nothing and stays here for the managers (refuted). When Bitrix24 could not
-- be asked, a River job asks again (pending) until the retry window ends
-- (expired, nothing changed).
--
-- Kept on a clean uninstall, like manager_audit: it is iSpring's record of
-- requests made to the app, not the customer's data.
CREATE TABLE uninstall_events (
    id          bigserial PRIMARY KEY,
    portal_id   bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    clean       boolean NOT NULL,       -- data[CLEAN]=1 asked to erase the data
    source_ip   text NOT NULL DEFAULT '',
    state       text NOT NULL
        CHECK (state IN ('pending', 'confirmed', 'refuted', 'expired')),
    reason      text NOT NULL DEFAULT '', -- Bitrix24's answer, e.g. an error code
    -- Refuted repeats from one address within an hour share a row.
    repeats     int NOT NULL DEFAULT 1,
    received_at timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX uninstall_events_portal ON uninstall_events (portal_id, received_at DESC);
