-- When the hourly maintenance last tried to keep the portal's Bitrix24
-- refresh token alive (internal/jobs/keepalive.go). A portal whose try
-- failed (its portal gone from Bitrix24, say) waits a day before the next,
-- so such portals cannot take every place of a pass, oldest first.
ALTER TABLE portals ADD COLUMN token_keepalive_at timestamptz;
-- The pass looks for installed portals by the age of their tokens.
CREATE INDEX portals_token_keepalive_idx ON portals (token_expires_at)
    WHERE install_state = 'installed' AND NOT needs_reconnect;
