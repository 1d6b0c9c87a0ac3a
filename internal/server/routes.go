package server

import (
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"b24learn/web"
)

// routes lists the whole HTTP surface of the app: every route and the
// middleware in front of it. Handlers live in the files of what they serve;
// no other file adds a route (routes_test.go checks both).
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(traceRequests(s.tracer), s.keepProxyRequestID, middleware.RequestID, s.withClientIP, s.accessLog, s.recoverer, securityHeaders, s.limitBody(maxBodyBytes))

	// Operations.
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/metrics", s.publicMetrics(s.metrics.Handler())) // the private listener is METRICS_ADDR

	// Bitrix24: the iframe pages and the event handler, proven through
	// Bitrix24's OAuth server (b24.go, b24_events.go; docs/bitrix24-api.md).
	r.Post("/b24/install", s.handleInstall)
	r.Post("/b24/app", s.handleApp)
	r.Post("/b24/events", s.handleEvents)

	// The app page's own requests, scoped to the session's portal: the
	// portal always comes from the session, never from the request. No
	// answer is kept by a cache: they name employees and their e-mails.
	r.Route("/app", func(r chi.Router) {
		r.Use(noStore, s.withSession)
		r.Get("/state", s.handleAppState)
		// The status panel's HTML, polled while a run is queued or running;
		// other users than admins get no names, e-mails or error texts.
		r.Get("/status", s.handleStatusPanel)
		// What changes state, and the run reports (employees' names and
		// e-mails), are for admins only.
		r.Group(func(r chi.Router) {
			r.Use(s.requireAdmin)
			r.Get("/runs/{runID}", s.handleRunReport)
			r.Get("/runs/{runID}/csv", s.handleRunCSV)
			r.Post("/settings", s.handleSaveSettings)
			r.Get("/fieldmap", s.handleFieldMap)
			r.Post("/preview", s.handleAction("preview"))
			r.Post("/sync", s.handleAction("sync"))
			r.Post("/approve", s.handleAction("approve"))
			r.Post("/activation", s.handleActivation)
			// Why is this person (not) in Learn, and one employee on demand.
			r.Get("/people", s.handlePeople)
			r.Get("/people/{user_id}", s.handlePerson)
			r.Post("/provision", s.handleProvision)
			// Send the alert address's confirmation link (again).
			r.Post("/alert-confirmation", s.handleSendAlertConfirmation)
		})
	})

	// The link of an alert address's confirmation e-mail, opened in a plain
	// tab outside Bitrix24 (alert_confirm.go): GET shows the button and
	// changes nothing, POST confirms. No session exists here; the token is
	// the proof, and POSTs must come from this origin.
	r.Route("/alerts", func(r chi.Router) {
		r.Use(noStore, s.sameOriginPosts)
		r.Get("/confirm", s.handleAlertConfirmPage)
		r.Post("/confirm", s.handleAlertConfirm)
	})

	// The iSpring managers' console: its own cookie session and CSRF token,
	// refused as a whole without SECRET_KEYS.
	r.Route("/manager", func(r chi.Router) {
		r.Use(s.consoleAvailable, noStore)
		// The console's own pages, which run no script.
		r.Group(func(r chi.Router) {
			r.Use(consolePageCSP)
			r.Get("/signin", s.handleSignInForm)
			r.Post("/signin", s.handleSignIn)
			r.Group(func(r chi.Router) {
				r.Use(s.requireManager) // and, until it has one, a second factor
				r.Get("/", s.handleConsoleHome)
				r.Post("/signout", s.handleSignOut)
				r.Get("/totp", s.handleTOTPForm)
				r.Post("/totp", s.handleTOTPConfirm)
				r.Get("/requests", s.handleRequests)
				r.Post("/requests/{id}", s.handleUpdateRequest)
				r.Get("/portals", s.handlePortals)
				r.Get("/portals/{id}", s.handlePortal)
				r.Post("/portals/{id}/activation", s.handleSetActivation)
				r.Get("/audit", s.handleAudit)
				r.Post("/lang", s.handleConsoleLang)
			})
		})
		// River UI: the same sign-in; its script's JSON POSTs carry no form
		// token, so they must come from the console's own origin.
		r.Group(func(r chi.Router) {
			r.Use(s.requireManagerSameOrigin, riverUICSP)
			r.Get("/river", s.handleRiverRoot)
			r.Handle("/river/*", s.riverUI)
		})
	})

	static, _ := fs.Sub(web.Static, "static")
	r.Handle("/static/*", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))

	return r
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}
