-- One row per Bitrix24 portal (tenant). member_id is Bitrix24's stable id of
-- the portal; the domain can change when a portal is renamed.
CREATE TABLE portals (
    id                bigserial PRIMARY KEY,
    member_id         text NOT NULL UNIQUE,
    domain            text NOT NULL,
    client_endpoint   text NOT NULL DEFAULT '',
    server_endpoint   text NOT NULL DEFAULT '',
    -- Secrets are AES-GCM ciphertexts from internal/secret, never plaintext.
    access_token      bytea,
    refresh_token     bytea,
    token_expires_at  timestamptz,
    application_token bytea,
    scope             text NOT NULL DEFAULT '',
    lang              text NOT NULL DEFAULT 'ru',
    install_state     text NOT NULL DEFAULT 'installed'
        CHECK (install_state IN ('installed', 'uninstalled')),
    activation_state  text NOT NULL DEFAULT 'inactive'
        CHECK (activation_state IN ('inactive', 'requested', 'active', 'suspended')),
    needs_reconnect   boolean NOT NULL DEFAULT false,
    installed_at      timestamptz NOT NULL DEFAULT now(),
    uninstalled_at    timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- What the Bitrix24 admin configured on the settings page.
CREATE TABLE portal_settings (
    portal_id                   bigint PRIMARY KEY REFERENCES portals(id) ON DELETE CASCADE,
    learn_url                   text NOT NULL DEFAULT '',
    learn_email                 text NOT NULL DEFAULT '',
    learn_password              bytea,
    first_run                   time,
    second_run                  time,
    send_login_email            boolean NOT NULL DEFAULT true,
    heads_as_managers           boolean NOT NULL DEFAULT false,
    parent_heads_as_supervisors boolean NOT NULL DEFAULT false,
    -- {"selected": [ids], "excluded": [ids]}: Bitrix24 department ids whose
    -- subtrees are in scope, and sub-departments cut out of them.
    departments                 jsonb NOT NULL DEFAULT '{"selected": [], "excluded": []}',
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (second_run IS NULL OR second_run <> first_run)
);
