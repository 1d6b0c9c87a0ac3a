-- A third reason a channel of an activation request was held back:
-- 'over_limit', the hourly bound on activation e-mails or CRM leads across
-- every portal was reached. Unlike the others it is not final: the channel
-- stays 'pending' and its job sends it once the hour is over.
ALTER TABLE activation_requests
    DROP CONSTRAINT activation_requests_email_skip_check,
    DROP CONSTRAINT activation_requests_crm_skip_check,
    ADD CONSTRAINT activation_requests_email_skip_check
        CHECK (email_skip IN ('', 'not_configured', 'no_recipients', 'over_limit')),
    ADD CONSTRAINT activation_requests_crm_skip_check
        CHECK (crm_skip IN ('', 'not_configured', 'over_limit'));
