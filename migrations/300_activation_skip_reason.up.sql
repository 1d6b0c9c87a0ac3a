-- Why a channel of an activation request was skipped, so the console can
-- say it: 'not_configured' (no SMTP_URL or MANAGER_EMAILS; no
-- LEAD_WEBHOOK_URL) or 'no_recipients' (every address on MANAGER_EMAILS
-- has a disabled console account). '' when the channel was not skipped,
-- and for e-mails skipped before this file, whose reason was not kept.
ALTER TABLE activation_requests
    ADD COLUMN email_skip text NOT NULL DEFAULT ''
        CHECK (email_skip IN ('', 'not_configured', 'no_recipients')),
    ADD COLUMN crm_skip text NOT NULL DEFAULT ''
        CHECK (crm_skip IN ('', 'not_configured'));

-- The CRM channel was only ever skipped for want of LEAD_WEBHOOK_URL.
UPDATE activation_requests SET crm_skip = 'not_configured' WHERE crm_state = 'skipped';
