-- The writes in flight a Learn account sustained in the last run that wrote
-- to it: the next run, in any process, starts there instead of finding the
-- limit again from a low start. learn_account is the key learn_user_owners
-- uses (address without scheme or trailing slash, lowercased); portals of one
-- account share one row.
CREATE TABLE learn_write_limits (
    learn_account text PRIMARY KEY,
    write_limit   integer NOT NULL CHECK (write_limit > 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
