package server

import "b24learn/internal/i18n"

// msg is the catalogue key of one user-facing text (internal/i18n).
type msg string

func (m msg) in(lang i18n.Lang, args ...any) string { return i18n.T(lang, string(m), args...) }

// The keys of the iframe's texts, in one block so that a text is looked for
// in one place; the catalogue holds the words.
var (
	// The settings form
	msgURLRequired      = msg("msg.url_required")
	msgURLTooLong       = msg("msg.url_too_long")
	msgURLInvalid       = msg("msg.url_invalid")
	msgURLNotHTTPS      = msg("msg.url_not_https")
	msgEmailRequired    = msg("msg.email_required")
	msgEmailInvalid     = msg("msg.email_invalid")
	msgPasswordRequired = msg("msg.password_required")
	msgPasswordAgain    = msg("msg.password_again")
	msgPasswordTooLong  = msg("msg.password_too_long")
	msgClientIDInvalid  = msg("msg.client_id_invalid")
	msgClientIDRequired = msg("msg.client_id_required")
	msgSecretRequired   = msg("msg.client_secret_required")
	msgSecretAgain      = msg("msg.client_secret_again")
	msgSecretTooLong    = msg("msg.client_secret_too_long")
	msgFirstRequired    = msg("msg.first_required")
	msgTimeInvalid      = msg("msg.time_invalid")
	msgSecondSame       = msg("msg.second_same")
	msgDeptsInvalid     = msg("msg.depts_invalid")
	msgDeptsTooMany     = msg("msg.depts_too_many")
	msgTooManyRequests  = msg("msg.too_many_requests")
	msgDeptsRequired    = msg("msg.depts_required")
	msgBoolInvalid      = msg("msg.bool_invalid")
	msgFixErrors        = msg("msg.fix_errors")
	msgCheckFailed      = msg("msg.check_failed")
	msgSaved            = msg("msg.saved")
	msgAdminOnly        = msg("msg.admin_only")
	msgBadRequest       = msg("msg.bad_request")
	msgAlertEmail       = msg("msg.alert_email_invalid")

	// The status panel's buttons
	msgStatusError    = msg("msg.status_error")
	msgNotConfigured  = msg("msg.not_configured")
	msgNotActive      = msg("msg.not_active")
	msgNothingHeld    = msg("msg.nothing_held")
	msgHeldChanged    = msg("msg.held_changed")
	msgPreviewQueued  = msg("msg.preview_queued")
	msgSyncQueued     = msg("msg.sync_queued")
	msgApproveQueued  = msg("msg.approve_queued")
	msgAlreadyQueued  = msg("msg.already_queued")
	msgRunNotFound    = msg("msg.run_not_found")
	msgSessionMissing = msg("msg.session_missing")
	msgB24Unreachable = msg("msg.b24_unreachable")
	msgAdminProofBusy = msg("msg.admin_proof_busy")
	msgFrameBusy      = msg("msg.frame_busy")

	// The frame POSTs' refusals (b24.go, b24_gate.go)
	msgOutsideB24            = msg("msg.outside_b24")
	msgNotConfirmed          = msg("msg.not_confirmed")
	msgVerifyBusy            = msg("msg.verify_busy")
	msgB24Down               = msg("msg.b24_down")
	msgAppCredentialsRefused = msg("msg.app_credentials_refused")
	msgB24Refused            = msg("msg.b24_refused")
	msgB24BadAddress         = msg("msg.b24_bad_address")
	msgB24BadAnswer          = msg("msg.b24_bad_answer")
	msgInstallAdminOnly      = msg("msg.install_admin_only")
	msgNotInstalled          = msg("msg.not_installed")
	msgInternal              = msg("msg.internal") // any error that is not an *apperr.Error
	msgBodyTooLarge          = msg("msg.body_too_large")

	// What the panel says of a queued or running job
	msgJobQueuedSync    = msg("msg.job_queued_sync")
	msgJobRunningSync   = msg("msg.job_running_sync")
	msgJobQueuedPreview = msg("msg.job_queued_preview")
	msgJobRunPreview    = msg("msg.job_run_preview")
	msgJobRetry         = msg("msg.job_retry")
	msgJobWaiting       = msg("msg.job_waiting")

	// The People section
	msgBadUserID      = msg("msg.bad_user_id")
	msgProvisionQueue = msg("msg.provision_queued")
	msgNoSuchPerson   = msg("msg.no_such_person")
	msgSearchShort    = msg("msg.search_short")
	msgNoSuchJob      = msg("msg.no_such_job")
	msgProvisionBusy  = msg("msg.provision_busy")
	msgProvisionSpent = msg("msg.provision_spent")
	msgOrgTooLarge    = msg("msg.org_too_large")

	// The session and the page
	msgSessionReinstalled = msg("msg.reinstalled")
	msgTreeError          = msg("msg.tree_error")
	msgAdminsOnlyDetail   = msg("msg.admins_only_detail") // stands in for an error text a non-admin may not see
)
