package authz

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pg"
)

// unavailable reports whether err means a dependency (Postgres, through the
// store or the resolver) could not answer: the request may succeed later, and
// the client did nothing wrong. fosite errors wrap the store's, and
// pg.IsConnectionError looks through the chain. An invalid_request is never
// unavailability: fosite wraps in it only what the client sent (a body cut
// short reads as io.ErrUnexpectedEOF, like a connection Postgres dropped),
// never a storage error.
func unavailable(err error) bool {
	return err != nil && !errors.Is(err, fosite.ErrInvalidRequest) && pg.IsConnectionError(err)
}

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
// RFC 6749 §4.1.2 and what CAMARA ICM clients expect from a GET, and adds
// the issuer to every authorization response it redirects, code or error
// (RFC 9207 iss, the mix-up defence of a client talking to several
// authorization servers). Only the query response mode is offered, so the
// response is always in the Location's query.
type foundWriter struct {
	http.ResponseWriter
	issuer string
}

// redirectWriter writes authorization responses (see foundWriter).
func (s *Server) redirectWriter(w http.ResponseWriter) foundWriter {
	return foundWriter{ResponseWriter: w, issuer: endpoint(s.cfg.Issuer, "")}
}

func (w foundWriter) WriteHeader(status int) {
	if status == http.StatusSeeOther {
		status = http.StatusFound
	}
	if loc := w.Header().Get("Location"); status == http.StatusFound && loc != "" && w.issuer != "" {
		w.Header().Set("Location", withIssuer(loc, w.issuer))
	}
	w.ResponseWriter.WriteHeader(status)
}

// withIssuer appends iss to the query of location, leaving the rest (the
// registered URI's own parameters included) byte for byte as fosite wrote it.
func withIssuer(location, issuer string) string {
	base, fragment, hasFragment := strings.Cut(location, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") {
			sep = ""
		}
	}
	base += sep + "iss=" + url.QueryEscape(issuer)
	if hasFragment {
		base += "#" + fragment
	}
	return base
}
