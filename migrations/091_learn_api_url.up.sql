-- Where the Learn account's REST API answers: the API host of iSpring's
-- domains or /api/v2 on the account's own host, as found by the connection
-- check (docs/learn-api.md, "Where the API answers"). '' until found: a
-- portal saved before this column gets it on its next check or run. Saving a
-- different learn_url stores the base found for it, or ''.
ALTER TABLE portal_settings ADD COLUMN learn_api_url text NOT NULL DEFAULT '';
