package authz

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/numverify/numverify/internal/httpx"
)

// routes maps every endpoint, below the issuer's path.
func (s *Server) routes() http.Handler {
	prefix := ""
	if u, err := url.Parse(s.cfg.Issuer); err == nil {
		prefix = strings.TrimSuffix(u.Path, "/")
	}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		route := prefix + path
		mux.HandleFunc(method+" "+route, func(w http.ResponseWriter, r *http.Request) {
			httpx.SetRoute(r.Context(), route)
			h(w, r)
		})
	}
	handle("GET /authorize", s.handleAuthorize)
	handle("POST /authorize", s.handleAuthorize)
	handle("POST /token", s.handleToken)
	handle("POST /bc-authorize", s.handleBackchannel)
	handle("POST /introspect", s.handleIntrospect)
	handle("POST /revoke", s.handleRevoke)
	handle("GET /userinfo", s.handleUserinfo)
	handle("POST /userinfo", s.handleUserinfo)
	handle("GET /.well-known/openid-configuration", s.handleDiscovery)
	handle("GET /.well-known/oauth-authorization-server", s.handleDiscovery)
	handle("GET /jwks.json", s.handleJWKS)
	return securityHeaders(mux)
}

// securityHeaders are set on every answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
