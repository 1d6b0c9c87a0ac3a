package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// errRefused carries a user-facing refusal out of a transaction; the
// message is put in the session's language outside it.
type errRefused struct {
	code string
	m    msg
}

func (e *errRefused) Error() string { return e.m.in(i18n.EN) }

// answerRefused answers the error of a button's transaction: a refusal as
// JSON in lang, anything else as an error.
func (s *Server) answerRefused(w http.ResponseWriter, r *http.Request, err error, lang i18n.Lang) {
	var ref *errRefused
	if errors.As(err, &ref) {
		s.errorJSON(w, r, apperr.New(ref.code, ref.m.in(lang)))
		return
	}
	s.error(w, r, err)
}

// settingsRefusal is what the buttons answer when the saved settings do
// not allow a run.
func settingsRefusal(why settings.Code) msg {
	if why == settings.NothingSelected {
		return msgDeptsRequired
	}
	return msgNotConfigured
}

// lockSyncable is what every button that queues a run asks first, inside
// the transaction that inserts the job: the portal's row is share-locked,
// so a portal suspended meanwhile gets no job. What the saved settings lack
// is refused here; any other reason is returned for the caller to judge (a
// preview may run before the portal is activated), with the portal's row.
func lockSyncable(ctx context.Context, tx pgx.Tx, portalID int64) (store.Portal, settings.Code, error) {
	var p store.Portal
	if err := tx.QueryRow(ctx, `SELECT install_state, activation_state, needs_reconnect FROM portals WHERE id = $1 FOR SHARE`,
		portalID).Scan(&p.InstallState, &p.ActivationState, &p.NeedsReconnect); err != nil {
		return p, "", fmt.Errorf("lock portal: %w", err)
	}
	st, err := settings.Load(ctx, tx, nil, portalID)
	if err != nil {
		return p, "", err
	}
	_, why := settings.Syncable(p, st)
	if why.InSettings() {
		return p, why, &errRefused{apperr.ECONFLICT, settingsRefusal(why)}
	}
	return p, why, nil
}
