package network

import "github.com/labstack/echo/v4"

// routes registers the admin API. Every route but /healthz needs the token.
// (The token check is attached per route, not to a group: an Echo group with
// middleware answers every other method on its paths with 404 instead of 405.)
func (a *Admin) routes(e *echo.Echo) {
	e.GET("/healthz", a.handleHealth)
	e.POST("/sessions", a.handleAttach, a.requireToken)
	e.GET("/sessions", a.handleList, a.requireToken)
	e.DELETE("/sessions/:id", a.handleDetach, a.requireToken)
	e.GET("/lookup", a.handleLookup, a.requireToken)
	e.POST("/operator-tokens", a.handleMintOperatorToken, a.requireToken) // operatortoken.go
}
