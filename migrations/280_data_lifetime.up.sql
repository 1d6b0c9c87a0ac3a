-- How long a portal's data lives when Bitrix24 keeps refusing its tokens
-- (internal/jobs/retention.go), and manager notes that go with an erase.

-- Since when Bitrix24 has refused the portal's tokens without a break: set
-- when needs_reconnect turns on, cleared when it turns off (a refresh that
-- worked, an admin's open of the app, a reinstall). A trigger keeps it, so
-- every statement that flips the flag, now or later, keeps it true.
-- erase_warned_at: when the admin was told of the coming erase (cleared
-- with the refusal, so a later refusal warns again). retention_checked_at:
-- when the hourly maintenance last asked Bitrix24 about the portal.
ALTER TABLE portals
    ADD COLUMN tokens_refused_at    timestamptz,
    ADD COLUMN erase_warned_at      timestamptz,
    ADD COLUMN retention_checked_at timestamptz;

-- Portals refused before this upgrade start counting now: none is erased
-- sooner than the retention after the upgrade, and each gets its warning.
UPDATE portals SET tokens_refused_at = now() WHERE needs_reconnect;

CREATE FUNCTION portals_tokens_refused_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.needs_reconnect THEN
        IF TG_OP = 'INSERT' OR NOT OLD.needs_reconnect THEN
            NEW.tokens_refused_at := coalesce(NEW.tokens_refused_at, now());
        END IF;
    ELSE
        NEW.tokens_refused_at := NULL;
        NEW.erase_warned_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER portals_tokens_refused_at BEFORE INSERT OR UPDATE OF needs_reconnect ON portals
    FOR EACH ROW EXECUTE FUNCTION portals_tokens_refused_at();

-- The maintenance looks for installed portals by the age of their refusal.
CREATE INDEX portals_tokens_refused_idx ON portals (tokens_refused_at)
    WHERE install_state = 'installed' AND needs_reconnect;

-- The admin is told before the erase, as of the other alerted states.
ALTER TABLE portal_alerts DROP CONSTRAINT portal_alerts_state_check;
ALTER TABLE portal_alerts ADD CONSTRAINT portal_alerts_state_check
    CHECK (state IN ('needs_attention', 'needs_reconnect', 'held', 'erase_scheduled'));

-- An erase keeps the audit line (who did what, when) and blanks its
-- free-text note; note_erased_at says when, so the console can say why the
-- note is empty.
ALTER TABLE manager_audit ADD COLUMN note_erased_at timestamptz;

-- River UI lines kept the request body as it came: free text, tied to no
-- portal, so no erase could find it. New lines keep only what River UI acts
-- on, the method, a known path and the job ids (internal/server/manager_river.go);
-- old ones are cut to the same, and what else they held goes.
DO $$
DECLARE
    r    record;
    head text;
    ids  text;
BEGIN
    FOR r IN SELECT id, note FROM manager_audit WHERE action = 'river_ui' AND note <> '' LOOP
        head := substring(r.note FROM
            '^((?:POST|PUT|PATCH|DELETE) /api/(?:jobs/(?:cancel|delete|retry)|queues/[a-z0-9_]+(?:/pause|/resume)?))(?: |$)');
        ids := NULL;
        IF head LIKE 'POST /api/jobs/%' THEN
            BEGIN
                SELECT string_agg(e, ',' ORDER BY o) INTO ids
                FROM jsonb_array_elements_text(substr(r.note, length(head) + 2)::jsonb -> 'ids') WITH ORDINALITY AS a(e, o)
                WHERE e ~ '^[0-9]{1,19}$';
            EXCEPTION WHEN others THEN
                ids := NULL; -- a body cut at its bound is no JSON: its ids go too
            END;
        END IF;
        UPDATE manager_audit SET note = coalesce(head, '') || coalesce(' ids=' || ids, ''), note_erased_at = now()
        WHERE id = r.id;
    END LOOP;
END
$$;
