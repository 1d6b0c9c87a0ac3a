-- An API key of the Learn account, when the admin gives one: the client then
-- signs in with a token from it instead of the e-mail and password
-- (docs/learn-api.md, "Authentication"). The secret is encrypted like
-- learn_password (internal/secret); NULL and '' mean no key.
ALTER TABLE portal_settings
    ADD COLUMN learn_client_id text NOT NULL DEFAULT '',
    ADD COLUMN learn_client_secret bytea;
