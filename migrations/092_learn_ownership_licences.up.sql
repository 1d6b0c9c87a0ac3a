-- Several portals may sync into one Learn account, and a Learn account has a
-- plan limit on active users.

-- Which portal owns a Learn user. The first portal that links or creates a
-- Learn user owns it; other portals' runs leave it alone. The primary key
-- makes the claim race-free between processes: two portals' first runs at
-- once cannot both own the same user. learn_account is the account's address
-- without scheme or trailing slash, lowercased.
CREATE TABLE learn_user_owners (
    learn_account text NOT NULL,
    learn_id      text NOT NULL,
    portal_id     bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (learn_account, learn_id)
);

CREATE INDEX learn_user_owners_portal ON learn_user_owners (portal_id);

-- Existing mappings become ownership. When two portals already map the same
-- Learn user, the one whose report first applied a step to it wins (then the
-- older portal); the other portal's next run reports the conflict.
INSERT INTO learn_user_owners (learn_account, learn_id, portal_id)
SELECT DISTINCT ON (acct, m.learn_id) acct, m.learn_id, m.portal_id
FROM (
    SELECT m.*, rtrim(regexp_replace(lower(btrim(s.learn_url)), '^[a-z]+://', ''), '/') AS acct
    FROM sync_mappings m JOIN portal_settings s ON s.portal_id = m.portal_id
    WHERE m.kind = 'user' AND s.learn_url <> ''
) m
ORDER BY acct, m.learn_id,
    (SELECT min(i.created_at) FROM sync_run_items i
     WHERE i.portal_id = m.portal_id AND i.kind = 'user' AND i.learn_id = m.learn_id AND i.status = 'applied') NULLS LAST,
    m.portal_id;

-- An employee of portal_id whose Learn user (by e-mail or login) is owned by
-- another portal, as the claimer's last run saw it; the owner's report lists
-- it too. Rows the claimer's run no longer sees are removed by that run.
CREATE TABLE learn_user_conflicts (
    learn_account   text NOT NULL,
    learn_id        text NOT NULL,
    portal_id       bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    b24_id          bigint NOT NULL,
    owner_portal_id bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, b24_id)
);

CREATE INDEX learn_user_conflicts_owner ON learn_user_conflicts (owner_portal_id);

-- Past the plan Learn keeps new and reactivated users inactive. Such a user
-- waits for a licence: it is not reactivated on every run, only when Learn's
-- active count went down or once a day (licence_tried_at).
ALTER TABLE sync_mappings
    ADD COLUMN licence_wait_since timestamptz,
    ADD COLUMN licence_tried_at   timestamptz;

-- Active users in the Learn account as a run left it: a lower count at the
-- next run means seats came free.
ALTER TABLE sync_runs ADD COLUMN learn_active integer;

-- waiting: an employee waiting for a licence; conflict: a Learn user another
-- portal owns (or, in the owner's report, that another portal also claims).
ALTER TABLE sync_run_items DROP CONSTRAINT sync_run_items_status_check;
ALTER TABLE sync_run_items ADD CONSTRAINT sync_run_items_status_check
    CHECK (status IN ('applied', 'refused', 'held', 'planned', 'failed', 'waiting', 'conflict'));
