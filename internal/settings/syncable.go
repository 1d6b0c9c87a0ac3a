package settings

import "b24learn/internal/store"

// Code says why a portal cannot sync; "" when it can.
type Code string

// The reasons, in the order Syncable checks them: the settings first, so a
// reason the admin fixes on the form is named whatever the portal's state
// (the status panel relies on it), and NotActive last, so a caller that runs
// before activation (Preview) accepts exactly NotActive.
const (
	// NoAccount: the Learn address, admin login, or password or API key is not saved.
	NoAccount Code = "no_account"
	// NoSchedule: no run time is saved.
	NoSchedule Code = "no_schedule"
	// NothingSelected: no department is selected, so a sync has nothing to do.
	NothingSelected Code = "nothing_selected"
	// NotInstalled: the app was removed from the portal.
	NotInstalled Code = "not_installed"
	// NeedsReconnect: Bitrix24 refused the stored tokens; an admin must open
	// the app.
	NeedsReconnect Code = "needs_reconnect"
	// NotActive: a manager has not activated the portal (or suspended it).
	NotActive Code = "not_active"
)

// InSettings reports whether the admin fixes the reason on the settings
// form, as opposed to the portal's state.
func (c Code) InSettings() bool {
	return c == NoAccount || c == NoSchedule || c == NothingSelected
}

// Syncable is the one rule of whether the portal can sync now: the Learn
// account, a run time and some departments saved, the app installed with
// working Bitrix24 tokens, and the portal activated. The dispatcher, the sync workers, Sync
// now, Preview, the status panel and the console all ask it.
func Syncable(p store.Portal, s Settings) (bool, Code) {
	switch {
	case !s.HasAccount():
		return false, NoAccount
	case s.Schedule.Empty():
		return false, NoSchedule
	case len(s.Departments.Selected) == 0:
		return false, NothingSelected
	case p.InstallState != store.InstallInstalled:
		return false, NotInstalled
	case p.NeedsReconnect:
		return false, NeedsReconnect
	case !p.Activated():
		return false, NotActive
	}
	return true, ""
}
