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

// routes lists the whole HTTP surface of the app.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.withClientIP, s.accessLog, s.recoverer, securityHeaders, limitBody(maxBodyBytes))

	// Operations.
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/metrics", s.publicMetrics(s.metrics.Handler())) // the private listener is METRICS_ADDR

	// Bitrix24: the iframe pages and the event handler (docs/bitrix24-api.md).
	r.Post("/b24/install", s.handleInstall)
	r.Post("/b24/app", s.handleApp)
	r.Post("/b24/events", s.handleEvents)

	// The app page's own requests, scoped to the session's portal.
	r.Route("/app", func(r chi.Router) {
		r.Use(s.withSession)
		r.Get("/state", s.handleAppState)
		s.settingsApp().mountSettings(r) // settings page: /app/settings, /app/status, /app/runs/…, /app/preview|sync|approve
		r.With(s.requireAdmin).Post("/activation", s.handleActivation)
	})

	// The iSpring managers' console: its own cookie session and CSRF.
	s.managerRoutes(r)

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
