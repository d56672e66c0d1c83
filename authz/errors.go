package authz

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pg"
)

// unavailable reports whether err means a dependency (Postgres, through the
// store or the resolver) could not answer: the request may succeed later, and
// the client did nothing wrong. fosite errors wrap the store's, and
// pg.IsConnectionError looks through the chain.
func unavailable(err error) bool { return err != nil && pg.IsConnectionError(err) }

// temporarilyUnavailable is the OAuth2 error for a dependency that is down.
var temporarilyUnavailable = fosite.ErrTemporarilyUnavailable.WithHint("The service is temporarily unavailable; try again.")

// logError records a failed request: the RFC 6749 error and, for server
// errors only, the cause. Hints and debug texts may quote parameters (a
// login_hint is a phone number), so they are never logged.
func (s *Server) logError(ctx context.Context, endpoint, clientID string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("endpoint", endpoint), slog.String("error", rfc.ErrorField), slog.Int("status", rfc.CodeField)}
	if clientID != "" {
		attrs = append(attrs, slog.String("client_id", clientID))
	}
	if rfc.CodeField >= http.StatusInternalServerError {
		level = slog.LevelWarn
		if cause := rfc.Unwrap(); cause != nil {
			attrs = append(attrs, slog.String("cause", cause.Error()))
		}
	}
	s.logger.LogAttrs(ctx, level, "request refused", attrs...)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title></head>
<body><h1>This sign-in request cannot be completed</h1>
<p>{{.Description}}</p>
<p><code>{{.Code}}</code></p></body></html>
`))

// writeErrorPage answers an authorization request that must not be
// redirected (unknown client, unregistered redirect URI): an HTML page.
func writeErrorPage(w http.ResponseWriter, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	status := rfc.CodeField
	if status < 400 || status > 599 {
		status = http.StatusBadRequest
	}
	description := rfc.DescriptionField
	if rfc.HintField != "" {
		description += " " + rfc.HintField
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct{ Code, Description string }{rfc.ErrorField, description})
}

// foundWriter turns fosite's 303 redirects into 302 Found, the status of
// RFC 6749 §4.1.2 and what CAMARA ICM clients expect from a GET.
type foundWriter struct{ http.ResponseWriter }

func (w foundWriter) WriteHeader(status int) {
	if status == http.StatusSeeOther {
		status = http.StatusFound
	}
	w.ResponseWriter.WriteHeader(status)
}
