-- Outgoing calls to Bitrix24 and iSpring Learn, per portal, kept 7 days for
-- Market review and support. Never tokens, passwords or personal data: only
-- the REST method or path, status, duration and error code.
CREATE TABLE call_log (
    id          bigserial PRIMARY KEY,
    portal_id   bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    service     text NOT NULL CHECK (service IN ('bitrix24', 'learn')),
    method      text NOT NULL,
    status      integer NOT NULL,
    duration_ms integer NOT NULL,
    error_code  text NOT NULL DEFAULT ''
);
CREATE INDEX call_log_portal_at_idx ON call_log (portal_id, at DESC);
CREATE INDEX call_log_at_idx ON call_log (at);
