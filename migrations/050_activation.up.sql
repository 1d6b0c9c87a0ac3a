-- Activation requests: what a portal's admin sent, and how far its
-- forwarding to the iSpring managers got, per channel.
CREATE TABLE activation_requests (
    id           bigserial PRIMARY KEY,
    portal_id    bigint NOT NULL REFERENCES portals(id) ON DELETE CASCADE,
    b24_user_id  bigint NOT NULL DEFAULT 0,
    name         text NOT NULL,
    email        text NOT NULL,
    phone        text NOT NULL, -- E.164, e.g. +79123456789
    -- Settings summary at submission (Learn URL, departments, run times).
    summary      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'contacted', 'activated', 'rejected')),
    notes        text NOT NULL DEFAULT '',
    -- Bumped by every resubmission; a forwarding attempt marks a channel
    -- delivered only for the revision it sent.
    revision     int NOT NULL DEFAULT 1,
    submissions  int NOT NULL DEFAULT 1,
    email_state  text NOT NULL DEFAULT 'pending'
        CHECK (email_state IN ('pending', 'delivered', 'failed', 'skipped')),
    email_attempts int NOT NULL DEFAULT 0,
    email_error  text NOT NULL DEFAULT '',
    email_at     timestamptz,
    crm_state    text NOT NULL DEFAULT 'pending'
        CHECK (crm_state IN ('pending', 'delivered', 'failed', 'skipped')),
    crm_attempts int NOT NULL DEFAULT 0,
    crm_error    text NOT NULL DEFAULT '',
    crm_at       timestamptz,
    crm_lead_id  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- At most one open request per portal: a repeat submission updates it.
CREATE UNIQUE INDEX activation_requests_open ON activation_requests (portal_id)
    WHERE status IN ('new', 'contacted');
CREATE INDEX activation_requests_created ON activation_requests (created_at DESC);

-- Fixed-window counters shared by every instance: activation submissions per
-- portal and per IP, failed console sign-ins per account and per IP.
-- Keys are not tenant rows (an IP is nobody's), hence no portal_id.
CREATE TABLE rate_limits (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         int NOT NULL DEFAULT 0,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- iSpring managers who sign in to /manager.
CREATE TABLE managers (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL, -- argon2id, PHC string format
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX managers_email ON managers (lower(email));

-- Server-side console sessions: the cookie carries only a random id whose
-- SHA-256 is stored here, so signing out (revoked_at) kills it everywhere.
CREATE TABLE manager_sessions (
    id_hash    bytea PRIMARY KEY,
    manager_id bigint NOT NULL REFERENCES managers(id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip         text NOT NULL DEFAULT ''
);
CREATE INDEX manager_sessions_manager ON manager_sessions (manager_id);

-- Who did what in the console. Kept when a portal is deleted (portal_id is
-- set NULL, the domain stays), since the trail must outlive its subject.
CREATE TABLE manager_audit (
    id            bigserial PRIMARY KEY,
    manager_id    bigint REFERENCES managers(id) ON DELETE SET NULL,
    manager_email text NOT NULL,
    action        text NOT NULL,
    portal_id     bigint REFERENCES portals(id) ON DELETE SET NULL,
    portal_domain text NOT NULL DEFAULT '',
    request_id    bigint REFERENCES activation_requests(id) ON DELETE SET NULL,
    note          text NOT NULL DEFAULT '',
    ip            text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX manager_audit_created ON manager_audit (created_at DESC);
CREATE INDEX manager_audit_portal ON manager_audit (portal_id, created_at DESC);
