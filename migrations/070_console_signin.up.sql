-- Console sign-in failures per (account, address): each address earns its own
-- growing delay, so guessing from one address cannot lock the account out of
-- the others. The account is the e-mail as typed, lower-cased.
CREATE TABLE login_failures (
    account       text NOT NULL,
    ip            text NOT NULL,
    failures      int NOT NULL DEFAULT 0,
    last_at       timestamptz NOT NULL,
    blocked_until timestamptz,
    PRIMARY KEY (account, ip)
);
CREATE INDEX login_failures_last ON login_failures (last_at);

-- Optional TOTP second factor. Secrets are encrypted with SECRET_KEYS.
ALTER TABLE managers
    ADD COLUMN totp_secret    bytea,  -- confirmed secret; NULL: no second factor
    ADD COLUMN totp_pending   bytea,  -- shown on the enrol page, not yet confirmed
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0, -- each code is accepted once
    ADD COLUMN totp_required  boolean NOT NULL DEFAULT false; -- must enrol before using the console

-- "Has this manager signed in from this address before?"
CREATE INDEX manager_audit_sign_in ON manager_audit (manager_id, ip) WHERE action = 'sign_in';
