package resource

import (
	"github.com/labstack/echo/v4"

	"github.com/numverify/numverify/internal/contract"
)

// The two editions of the API this server serves.
const (
	basePathV2 = "/number-verification/v2"
	basePathV0 = "/number-verification/v0"
)

// routes is every route of the server. Middleware is attached per route, not
// per group, so an unknown path is a 404 before any token is looked at.
func (s *Server) routes(e *echo.Echo) {
	for _, base := range []string{basePathV2, basePathV0} {
		e.POST(base+"/verify", s.authorized(contract.PermissionVerify, s.handleVerify))
		e.GET(base+"/device-phone-number", s.authorized(contract.PermissionShare, s.handleShare))
	}
	e.GET(basePathV2+"/openapi.yaml", s.handleOpenAPI(s.openapiV2))
	e.GET(basePathV0+"/openapi.yaml", s.handleOpenAPI(s.openapiV0))
	// Anything else: Echo's router answers 404, or 405 with Allow for a
	// known path (OPTIONS on a known path: 204 with Allow), and handleError
	// renders them in the path's dialect.
}
